"""Working Days and due dates: Monday to Friday less the bank holidays of England and Wales, counted from
the ``holidays`` calendar; the report is due on the 10th Working Day after month end."""

from __future__ import annotations

import datetime as dt

import pytest

from smki.reports.workingdays import WorkingDays, due_date

ENGLAND = WorkingDays("GB", "ENG")
D = dt.date


@pytest.mark.parametrize(("month", "due"), [
    ("2026-12", D(2027, 1, 15)),   # New Year's Day (Friday) is not a Working Day
    ("2024-03", D(2024, 4, 15)),   # Easter Monday 1 April 2024 falls in the count
    ("2026-03", D(2026, 4, 16)),   # Good Friday 3 April and Easter Monday 6 April 2026 both fall in it
    ("2026-08", D(2026, 9, 14)),   # August ends on its bank holiday (Monday 31st): counting starts 1 September
    ("2027-01", D(2027, 2, 12)),   # January 2027 ends on a Sunday
    ("2026-10", D(2026, 11, 13)),  # October 2026 ends on a Saturday
    ("2026-11", D(2026, 12, 14)),
])
def test_due_date_is_the_tenth_working_day_after_month_end(month: str, due: dt.date) -> None:
    assert due_date(month, ENGLAND) == due


def test_christmas_and_boxing_day_substitute_are_not_working_days() -> None:
    # Wednesday 23 December 2026: Christmas Day is a Friday, Boxing Day a Saturday (observed Monday 28th)
    assert ENGLAND.nth_after(D(2026, 12, 23), 1) == D(2026, 12, 24)
    assert ENGLAND.nth_after(D(2026, 12, 23), 2) == D(2026, 12, 29)
    assert ENGLAND.nth_after(D(2026, 12, 23), 3) == D(2026, 12, 30)
    assert not ENGLAND.is_working_day(D(2026, 12, 28))


def test_working_days_before_skip_the_august_bank_holiday() -> None:
    assert ENGLAND.nth_before(D(2026, 9, 1), 1) == D(2026, 8, 28)
    assert ENGLAND.nth_before(D(2026, 9, 14), 0) == D(2026, 9, 14)


def test_lateness_is_counted_in_working_days() -> None:
    assert ENGLAND.between(D(2027, 1, 15), D(2027, 1, 15)) == 0
    assert ENGLAND.between(D(2027, 1, 15), D(2027, 1, 18)) == 1   # due Friday, delivered Monday: one day late
    assert ENGLAND.between(D(2026, 12, 24), D(2026, 12, 29)) == 1


def test_region_is_configurable() -> None:
    # Scotland keeps 2 January (a Saturday in 2027, observed Monday 4 January); England does not
    scotland = WorkingDays("GB", "SCT")
    assert due_date("2026-12", scotland) == D(2027, 1, 18)
    assert due_date("2026-12", ENGLAND) == D(2027, 1, 15)
