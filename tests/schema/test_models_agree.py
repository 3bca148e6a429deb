"""The models and the migrations describe one schema (issue 8, item 13).

A fresh database is migrated to every branch's head, then Alembic's autogenerate compares it with
``Base.metadata`` of every area: any difference (a table, column, type, nullability, server default,
index, unique or foreign key) means a deployed database does not have what the code assumes, or the
next ``alembic revision --autogenerate`` would emit a spurious migration.

Compared on both dialects, with nothing filtered out: types (``compare_type``, lengths included) and
server defaults (``compare_server_default``; no table has one today, and the last test shows a new one
would be seen). Foreign keys are compared with their ON DELETE, which both dialects reflect. Out of reach
of any comparison, and so not checked: CHECK constraints (Alembic does not compare them; none are
declared) and, on SQLite, the names of unnamed constraints (every constraint here is named by the
naming convention).
"""

from __future__ import annotations

import pprint
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DefaultClause, MetaData, String

from smki.core.db import Database
from smki.schema import import_all_models, migrate


def schema_differences(database: Database, metadata: MetaData | None = None) -> list[Any]:
    """Every difference autogenerate finds between the models (or ``metadata``) and the migrated ``database``."""
    metadata = metadata if metadata is not None else import_all_models().metadata
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "compare_server_default": True, "target_metadata": metadata})
        return list(compare_metadata(context, metadata))


def test_the_models_agree_with_the_migrated_schema(database_url: str) -> None:
    database = Database(database_url)
    migrate(database)

    differences = schema_differences(database)

    assert differences == [], (
        "models and migrations differ; fix the model where the migration is what deployed databases have, "
        "or add a migration where the model is right:\n" + pprint.pformat(differences))


def test_the_comparison_sees_a_model_the_migrations_do_not_have(database_url: str) -> None:
    """The check can fail: a column the migrations never made is reported (so an empty list means agreement)."""
    database = Database(database_url)
    migrate(database)
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE csr_rejection DROP COLUMN message")

    differences = schema_differences(database)

    added = [(d[2], d[3].name) for d in differences if isinstance(d, tuple) and d[0] == "add_column"]
    assert added == [("csr_rejection", "message")], differences


def test_the_comparison_sees_types_and_server_defaults(database_url: str) -> None:
    """Types and server defaults are compared on this dialect: a model with a longer code column and a
    server default the migrations never gave is reported twice."""
    database = Database(database_url)
    migrate(database)
    models = import_all_models().metadata
    altered = MetaData(naming_convention=models.naming_convention)
    for table in models.sorted_tables:
        table.to_metadata(altered)
    rejection = altered.tables["csr_rejection"]
    rejection.c.code.type = String(12)
    rejection.c.channel.server_default = DefaultClause("operator")

    differences = schema_differences(database, altered)

    changes = [(d[0][0], d[0][2], d[0][3]) for d in differences if isinstance(d, list)]
    assert sorted(changes) == [("modify_default", "csr_rejection", "channel"),
                               ("modify_type", "csr_rejection", "code")], differences
