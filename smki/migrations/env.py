"""Alembic environment: runs on the connection :meth:`smki.core.db.Database.migrate` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from smki.schema import import_all_models

Base = import_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        return
    # Invoked from the alembic command line (for example ``alembic revision --autogenerate``)
    url = config.attributes.get("connection_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database as -x or sqlalchemy.url; see smki.schema.alembic_config")
    engine = create_engine(str(url))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
