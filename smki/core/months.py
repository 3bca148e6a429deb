"""Calendar months named ``YYYY-MM``: the one place their arithmetic lives (forecasts, the variance and demand
reports, Working Days).

A month is also an index (year * 12 + month - 1), so "the next month" or "twelve months back" is integer
arithmetic rather than date juggling at each call site.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_index(month: str) -> int:
    found = MONTH.match(month)
    if found is None:
        raise ValueError(f"{month!r} is not a month YYYY-MM")
    return int(found[1]) * 12 + int(found[2]) - 1


def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_first(month: str) -> dt.date:
    index = month_index(month)
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: str) -> dt.date:
    """The month's last day."""
    return month_first(month_name(month_index(month) + 1)) - dt.timedelta(days=1)


def month_start(month: str, zone: str) -> dt.datetime:
    """The moment the month begins in ``zone`` (midnight of its first day, local time)."""
    first = month_first(month)
    return dt.datetime(first.year, first.month, 1, tzinfo=ZoneInfo(zone))
