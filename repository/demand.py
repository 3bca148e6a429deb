"""Request counts from the web service's request log, for Appendix P's 120%-of-forecast rule.

The one public read of ``repository_request`` for counting: callers (the Repository Demand Exceptions
report in :mod:`smki.reports`) never read the table. Time is cut into slots by the caller (a day's time
bands, in any time zone), so the Repository knows nothing of bands or forecasts; the slots are bucketed
with a CASE on their UTC starts, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import QueryableAttribute

from repository.models import RepositoryRequestLog
from smki.core.db import Database


def _slot_of(at: QueryableAttribute[dt.datetime], starts: Sequence[dt.datetime], first: int,
             end: int) -> ColumnElement[int]:
    """The slot of ``at`` among slots ``first`` to ``end - 1``, as CASEs nested by halves: a month's 93 slots
    take seven comparisons a row, not the 46 on average of one flat CASE."""
    if end - first == 1:
        return literal(first)
    middle = (first + end) // 2
    return case((at < starts[middle], _slot_of(at, starts, first, middle)), else_=_slot_of(at, starts, middle, end))


class RequestCount(NamedTuple):
    holder: str          # the Repository user, as the RA named them (party:<name>/person:<id>)
    slot: int            # index into the slots: slot i runs from starts[i] (inclusive) to starts[i + 1]
    operation: str       # the group of ``groups`` the operation is in, else the operation itself
    requests: int


def request_counts(database: Database, starts: Sequence[dt.datetime],
                   groups: Mapping[str, str] | None = None) -> list[RequestCount]:
    """Requests per (holder, slot, operation) for the slots ``starts`` delimit: ``starts`` ascending,
    timezone-aware, one more than the slots (the last ends the last slot). A request at exactly a slot's
    start is in that slot. ``groups`` (operation -> group name) counts the operations of a group together,
    under the group's name (fewer rows to return: a month's report groups by interface); an operation in no
    group is counted under its own name. Requests of no holder (a refused or missing key) are nobody's and
    not counted. One grouped query."""
    if len(starts) < 2:
        raise ValueError("request_counts needs at least one slot: two starts")
    if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
        raise ValueError("slot starts must be strictly ascending")
    at = RepositoryRequestLog.at
    slot = _slot_of(at, starts, 0, len(starts) - 1).label("slot")
    # grouped outside a subquery, so PostgreSQL groups by the column and not by a CASE whose parameters it
    # would compare by position
    operation: ColumnElement[str] = RepositoryRequestLog.operation  # type: ignore[assignment]
    if groups:
        operation = case(groups, value=RepositoryRequestLog.operation, else_=RepositoryRequestLog.operation)
    rows = (select(RepositoryRequestLog.holder, slot, operation.label("operation"))
            .where(at >= starts[0], at < starts[-1], RepositoryRequestLog.holder.is_not(None)).subquery())
    statement = (select(rows.c.holder, rows.c.slot, rows.c.operation, func.count().label("requests"))
                 .group_by(rows.c.holder, rows.c.slot, rows.c.operation))
    # a Core connection: the ORM session's result handling would cost as much as the query on a month's rows
    with database.engine.connect() as connection:
        return [RequestCount._make(row) for row in connection.execute(statement)]
