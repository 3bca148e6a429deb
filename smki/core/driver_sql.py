"""Statements compiled once by SQLAlchemy and run on the database driver's own cursor.

For the few statements that run once per certificate on the issuance path. SQLAlchemy's per-execution
work (building the execution context, result metadata, processing each parameter) costs several times a
SQLite insert and as much as a round trip to PostgreSQL on a loaded machine; the SQL itself is still what
SQLAlchemy compiles for the dialect, and every value still passes through the column type's own bind
processor, so the rows are byte for byte what ``connection.execute`` would write. Driver errors are raised
as SQLAlchemy raises them (``IntegrityError`` and so on), so callers handle one kind of error. Where
anything listens to SQLAlchemy's cursor events on the connection, the statements go through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Executable, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class DriverStatement:
    """One statement for one dialect: its SQL text, its parameters in the driver's order and style, and
    each parameter's bind processor."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        self.statement = cast(Executable, statement)  # every statement given here is an INSERT
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.dialect = dialect
        self._fixed = dict(compiled.params)
        self._order = list(compiled.positiontup) if compiled.positiontup is not None else None
        # Named styles: only the binds the SQL text names (a bind folded away by the compiler is not sent).
        self._names = self._order if self._order is not None else [
            name for name in compiled.binds if _placeholder(dialect, name) in self.sql]
        # bind name -> the key the caller's row holds it under (an INSERT's binds are its column names)
        self._keys = {name: compiled.binds[name].key for name in self._names}
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in self._names:
            processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        # Per parameter, in the driver's order: the row key it is read from, its value when the row lacks it
        # (a value bound in the statement itself), and its bind processor.
        self._plan = [(self._keys[name], self._fixed.get(name), processors.get(name)) for name in self._names]

    def arguments(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``row`` (by column or bind key) as the driver takes it."""
        get = row.get   # once per row, per column: a single comprehension, no nested generator
        values = [processor(value) if (value := get(key, fixed)) is not None and processor is not None else value
                  for key, fixed, processor in self._plan]
        if self._order is not None:
            return tuple(values)
        return dict(zip(self._names, values, strict=True))

    def execute(self, connection: Connection, row: Mapping[str, Any]) -> tuple[int, list[tuple[Any, ...]]]:
        """Run once in ``connection``'s transaction; (rows affected, rows returned)."""
        if observed(connection):
            result = connection.execute(self.statement, dict(row))
            return result.rowcount, [tuple(r) for r in result.fetchall()] if result.returns_rows else []
        arguments = self.arguments(row)
        with driver_cursor(connection, self.sql, arguments) as cursor:
            cursor.execute(self.sql, arguments)
            rows = cursor.fetchall() if cursor.description is not None else []
            return cursor.rowcount, rows

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row in ``connection``'s transaction (psycopg pipelines these; SQLite loops in C)."""
        if observed(connection):
            connection.execute(self.statement, [dict(row) for row in rows])
            return
        arguments = [self.arguments(row) for row in rows]
        with driver_cursor(connection, self.sql, arguments) as cursor:
            cursor.executemany(self.sql, arguments)


def observed(connection: Connection) -> bool:
    """Whether something listens to the statements ``connection`` runs (SQLAlchemy's cursor events: tracing,
    a test's simulated crash). Those listeners must see every statement, so then the statements go through
    SQLAlchemy after all."""
    return bool(connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute)


@contextmanager
def driver_cursor(connection: Connection, sql: str, arguments: Any) -> Iterator[Any]:
    """A cursor of ``connection``'s driver connection, in its transaction, closed after use; a driver error
    is raised as SQLAlchemy's own (``sql`` and ``arguments`` go into its message)."""
    driver_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except driver_error as error:
        raise DBAPIError.instance(sql, arguments, error, driver_error, dialect=connection.dialect) from error
    finally:
        cursor.close()


def _placeholder(dialect: Dialect, name: str) -> str:
    return f"%({name})s" if dialect.paramstyle == "pyformat" else f":{name}"


_statements: dict[tuple[str, str], DriverStatement] = {}


def driver_statement(name: str, connection: Connection,
                     build: Callable[[Dialect], tuple[ClauseElement, Sequence[str] | None]]) -> DriverStatement:
    """The statement called ``name`` for ``connection``'s dialect, compiled on first use."""
    dialect = connection.dialect
    made = _statements.get((name, dialect.name))
    if made is None:
        statement, keys = build(dialect)
        made = _statements[(name, dialect.name)] = DriverStatement(statement, dialect, keys)
    return made


def insert_rows(connection: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (mappings holding at least ``columns``) into ``table`` in ``connection``'s transaction,
    the fastest way the driver has: PostgreSQL's ``COPY ... FROM STDIN`` (psycopg adapts each value as it
    would a parameter), elsewhere one prepared INSERT run for every row. Bulk writes of the issuance path (a
    chunk's ledger rows and Repository records) take this; a unique violation is raised as SQLAlchemy's
    ``IntegrityError`` either way."""
    if not rows:
        return
    if connection.dialect.name != "postgresql" or observed(connection):
        driver_statement(f"insert:{table.name}:{','.join(columns)}", connection,
                         lambda _dialect: (insert(table), columns)).executemany(connection, rows)
        return
    preparer = connection.dialect.identifier_preparer
    sql = (f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(c) for c in columns)}) FROM STDIN")
    with driver_cursor(connection, sql, None) as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(tuple(row[c] for c in columns))
