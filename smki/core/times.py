"""Times as the sandbox stores them: always UTC. SQLite hands back naive datetimes for what was stored as UTC;
``utc`` makes them aware again, so that comparisons with ``now_utc()`` never mix naive and aware values."""

from __future__ import annotations

import datetime as dt
from typing import overload


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@overload
def utc(value: dt.datetime) -> dt.datetime: ...


@overload
def utc(value: dt.datetime | None) -> dt.datetime | None: ...


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """The same moment, aware and in UTC (a naive value is taken to be UTC already)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
