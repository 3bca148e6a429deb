"""The database: one engine per URL, one session per unit of work, schema by Alembic migrations.

SQLite is the embedded default; PostgreSQL is selected by ``SMKI_DATABASE_URL``
(``postgresql+psycopg://...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import CursorResult, Engine, MetaData, Result, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def normalise_url(url: str) -> str:
    """Let people write ``postgresql://`` and still get the maintained psycopg 3 driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the web service read while a worker writes; NORMAL is durable at each checkpoint in WAL
    # mode and keeps per-certificate commits cheap; the busy timeout absorbs short writer overlaps.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    url = normalise_url(url)
    if url not in _engines:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
    return _engines[url]


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def forget_inherited_connections() -> None:
    """In a process just forked (a web worker): drop the pooled connections inherited from the parent without
    closing them, as closing would end the parent's own database sessions; new ones are opened on demand."""
    for engine in _engines.values():
        engine.dispose(close=False)


class Database:
    """A handle on one database: sessions for units of work, and its migrations."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = engine_for(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error, never half-written."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched. ``Session.execute`` is typed as returning a plain
    ``Result``; for data-changing statements it is a ``CursorResult``, which alone carries the count."""
    if not isinstance(result, CursorResult):
        raise TypeError("rows_affected takes the result of an UPDATE, DELETE or INSERT")
    return result.rowcount
