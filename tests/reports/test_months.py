"""The one month arithmetic (smki.core.months) the forecasts and reports share."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smki.core.months import month_end, month_first, month_index, month_name, month_start

months = st.builds(lambda year, month: f"{year:04d}-{month:02d}", st.integers(1900, 9998), st.integers(1, 12))


@given(months)
def test_a_month_round_trips_and_its_end_touches_the_next_months_first_day(month: str) -> None:
    assert month_name(month_index(month)) == month
    following = month_name(month_index(month) + 1)
    assert month_end(month) + dt.timedelta(days=1) == month_first(following)
    assert month_first(month).day == 1 and month_end(month).month == month_first(month).month


@pytest.mark.parametrize(("month", "last"), [("2024-02", 29), ("2025-02", 28), ("2026-12", 31), ("2027-04", 30)])
def test_month_end_knows_leap_years_and_december(month: str, last: int) -> None:
    assert month_end(month).day == last


def test_month_start_is_local_midnight() -> None:
    start = month_start("2026-07", "Europe/London")
    assert start.utcoffset() == dt.timedelta(hours=1) and (start.day, start.hour) == (1, 0)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-01", "2026-1", "2026-01-01", ""])
def test_not_a_month_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        month_index(bad)
