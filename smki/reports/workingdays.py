"""Working Days (SEC): Monday to Friday, less the bank holidays of a region, from the maintained
``holidays`` calendar rather than a hand-written list (bank holidays move: substitute days, one-off
holidays for coronations and funerals)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import holidays

from smki.core.months import month_end
from smki.core.policyfiles.variance import VariancePolicy


@cache
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


class WorkingDays:
    def __init__(self, country: str = "GB", subdivision: str | None = "ENG") -> None:
        self.holidays = _calendar(country, subdivision)

    @classmethod
    def from_policy(cls, policy: VariancePolicy) -> WorkingDays:
        return cls(policy.working_days.country, policy.working_days.subdivision)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def nth_after(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th Working Day after ``day`` (``day`` itself not counted)."""
        if n < 1:
            raise ValueError("n counts from 1")
        while n:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def nth_before(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th Working Day before ``day``; ``day`` itself when n is 0."""
        while n:
            day -= dt.timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def between(self, after: dt.date, until: dt.date) -> int:
        """Working Days in (after, until]: how many Working Days late a delivery on ``until`` is."""
        count, day = 0, after
        while day < until:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count


def due_date(month: str, working_days: WorkingDays, nth: int = 10) -> dt.date:
    """The report for ``month`` is due by the ``nth`` Working Day counted from the first day after month end."""
    return working_days.nth_after(month_end(month), nth)
