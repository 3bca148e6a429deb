"""The Appendix O web service's reads: one statement, one round trip, on a connection its thread keeps.

Why not a pooled connection per request: on PostgreSQL a checkout costs round trips of its own before the
query (the pool's pre-ping, a ``SELECT 1`` inside a ``BEGIN``) and after it (the reset's ``ROLLBACK``), and
on both databases SQLAlchemy's checkout and per-execution work cost a web worker more CPU than the indexed
query itself (``python -m bench.repository_search`` measures it). A search or retrieval is one statement
that only reads, so each thread keeps a DBAPI connection of its own (autocommit on PostgreSQL: no ``BEGIN``,
no ``COMMIT``; one statement is its own consistent snapshot), runs the statement compiled once per
dialect, and takes the rows as the driver returns them (the service reads no column that needs converting).

A connection found lost (the database restarted, an idle connection cut) is not pinged for beforehand:
the statement that finds it so (the dialect's own ``is_disconnect``) is run once more on a new connection,
which is safe because it only reads. A connection belongs to the process that opened it; a forked child
(a gunicorn worker) opens its own. Each web thread holds one connection per database, outside the pool:
``workers x threads`` connections in all (8 with ``smki serve``'s defaults on two cores).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, Engine, Select
from sqlalchemy.exc import DBAPIError

from smki.core.db import Database
from smki.core.driver_sql import DriverStatement

MAX_DATABASES_PER_THREAD = 4
_local = threading.local()


@lru_cache(maxsize=32)
def _prepared(statement: Select[Any], dialect: Dialect) -> DriverStatement:
    return DriverStatement(statement, dialect)


def _open(engine: Engine) -> Any:
    # Through the pool once, so the engine's connect hooks run (SQLite's WAL and busy-timeout pragmas), then
    # detached from it: the pool never hands this connection to anyone else, with autocommit or otherwise.
    proxied = engine.raw_connection()
    connection: Any = proxied.driver_connection
    proxied.detach()
    if engine.dialect.name == "postgresql":
        connection.autocommit = True
    return connection


def _connection(database: Database) -> Any:
    held: dict[str, tuple[int, Any]] | None = getattr(_local, "held", None)
    if held is None:
        held = _local.held = {}
    found = held.get(database.url)
    if found is not None and found[0] == os.getpid():
        return found[1]
    if found is not None:  # opened before a fork: the parent's to close, not ours
        del held[database.url]
    while len(held) >= MAX_DATABASES_PER_THREAD:  # a server has one database; a test run meets many
        url = next(iter(held))
        _drop_url(held, url)
    connection = _open(database.engine)
    held[database.url] = (os.getpid(), connection)
    return connection


def _drop_url(held: dict[str, tuple[int, Any]], url: str) -> None:
    pid, connection = held.pop(url)
    if pid == os.getpid():
        with contextlib.suppress(Exception):  # closing a connection nobody will use again is a courtesy
            connection.close()


def _drop(database: Database, connection: Any) -> None:
    held: dict[str, tuple[int, Any]] = getattr(_local, "held", {})
    if held.get(database.url, (0, None))[1] is connection:
        _drop_url(held, database.url)


def read(database: Database, statement: Select[Any], parameters: Mapping[str, Any]) -> list[Sequence[Any]]:
    """``statement``'s rows, with ``parameters`` bound over its own; one round trip on this thread's
    connection. Build ``statement`` once: it is compiled once per dialect (:mod:`smki.core.driver_sql`, as
    the issuance path's statements are), keyed by the object. A driver error is raised as SQLAlchemy's."""
    dialect = database.engine.dialect
    prepared = _prepared(statement, dialect)
    arguments = prepared.arguments(parameters)
    driver_error = dialect.loaded_dbapi.Error
    for attempt in (1, 2):
        connection = _connection(database)
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(prepared.sql, arguments)
            rows = cursor.fetchall()
        except driver_error as error:
            lost = dialect.is_disconnect(error, connection, cursor)
            _drop(database, connection)  # whatever went wrong, the next statement starts on a fresh connection
            if lost and attempt == 1:
                continue
            raise DBAPIError.instance(prepared.sql, arguments, error, driver_error, dialect=dialect) from error
        cursor.close()
        return list(rows)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def forget() -> None:
    """Close this thread's connections (a test's database is about to go)."""
    held: dict[str, tuple[int, Any]] = getattr(_local, "held", {})
    for url in list(held):
        _drop_url(held, url)
