"""The Repository Demand Exceptions report (SEC Appendix P): each Repository user's Portal and Web Service
requests per day and time band against its forecast, and the exceptions: at or above
``repository_demand.threshold.high`` percent (120) of the forecast, or requests with no forecast.

The figures come from public functions only: forecasts from the RA
(:func:`smki.ra.demand_forecasts.daily_forecasts`), request counts from one aggregate query over the
Repository's request log (:func:`repository.demand.request_counts`), with the period cut into one slot per
band of each day here, in the policy's time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from repository.demand import request_counts
from smki.core.db import Database
from smki.core.errors import SmkiError
from smki.core.months import MONTH, month_end, month_first
from smki.core.policyfiles.variance import VariancePolicy
from smki.ra.demand_forecasts import INTERFACES, daily_forecasts
from smki.reports import bands

BAD_PERIOD = "FM:DEM01"
PERIOD_NOT_ENDED = "WF:DEM02"
DAY = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
INTERFACE_NAMES = {"portal": "Portal", "web_service": "Web Service"}


@dataclass(frozen=True)
class DemandLine:
    """One Repository user's requests through one interface in one band of one day."""

    user: str
    day: dt.date
    band: str
    interface: str                       # portal | web_service
    requests: int
    forecast: int | None                 # None: no forecast covers the day
    percent: Decimal | None              # requests as a percentage of the forecast, cut to 0.1
    exception: str | None                # bands.HIGH, bands.NO_FORECAST or None


@dataclass(frozen=True)
class DemandReport:
    period: str                          # YYYY-MM or YYYY-MM-DD
    first_day: dt.date
    last_day: dt.date
    bands: tuple[str, ...]
    threshold: float
    produced_at: dt.datetime
    lines: tuple[DemandLine, ...]        # every (user, day, band, interface) with requests or a forecast
    unclassified: dict[str, int]         # requests of operations no interface lists, by operation

    @property
    def exceptions(self) -> tuple[DemandLine, ...]:
        return tuple(line for line in self.lines if line.exception)

    def reason(self, line: DemandLine) -> str:
        if line.exception == bands.HIGH:
            return f"at or above {self.threshold:g}% of forecast"
        if line.exception == bands.NO_FORECAST:
            return "requests with no forecast" if line.forecast is None else "requests against a forecast of nought"
        return ""

    def users(self) -> list[tuple[str, int, int]]:
        """(user, requests, exceptions) for every user in the report."""
        requests: Counter[str] = Counter()
        exceptions: Counter[str] = Counter()
        for line in self.lines:
            requests[line.user] += line.requests
            exceptions[line.user] += bool(line.exception)
        return [(user, requests[user], exceptions[user]) for user in sorted(requests)]


def period_days(period: str, policy: VariancePolicy, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last day of ``period`` (a month YYYY-MM or a day YYYY-MM-DD), which must have ended."""
    if MONTH.match(period):
        first, last = month_first(period), month_end(period)
    elif DAY.match(period):
        try:
            first = last = dt.date.fromisoformat(period)
        except ValueError:
            raise SmkiError(BAD_PERIOD, f"{period!r} is not a day of the calendar.", field="period") from None
    else:
        raise SmkiError(BAD_PERIOD, f"{period!r} is neither a month (YYYY-MM) nor a day (YYYY-MM-DD).",
                        field="period")
    if _start(last + dt.timedelta(days=1), 0, policy.timezone) > now:
        raise SmkiError(PERIOD_NOT_ENDED, f"{period} has not ended yet; its report can be produced once it has.",
                        field="period")
    return first, last


def _start(day: dt.date, minutes: int, zone: str) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                       tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


def build(database: Database, policy: VariancePolicy, period: str, *, now: dt.datetime | None = None) -> DemandReport:
    """The report for ``period``: one aggregate count over the request log, one read of the forecasts."""
    now = now or dt.datetime.now(dt.UTC)
    demand = policy.repository_demand
    first, last = period_days(period, policy, now)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    slots = [(day, band.name) for day in days for band in demand.bands]
    starts = [_start(day, band.minutes, policy.timezone) for day in days for band in demand.bands]
    starts.append(_start(last + dt.timedelta(days=1), 0, policy.timezone))

    interface_of = {operation: interface for interface in INTERFACES
                    for operation in getattr(demand.interfaces, interface)}
    actual: Counter[tuple[str, dt.date, str, str]] = Counter()
    unclassified: Counter[str] = Counter()
    for count in request_counts(database, starts, interface_of):
        interface = count.operation if count.operation in INTERFACES else None
        if interface is None:
            unclassified[count.operation] += count.requests
            continue
        day, band = slots[count.slot]
        actual[count.holder, day, band, interface] += count.requests

    forecasts = daily_forecasts(database, first, last)
    expected: dict[tuple[str, dt.date, str, str], int] = {}
    for (user, day, band), figures in forecasts.items():
        for name in INTERFACES:
            expected[user, day, band, name] = getattr(figures, name)
    # a band the policy no longer has (forecasts outlive policy changes) cannot be measured: leave it out
    known = {band.name for band in demand.bands}
    band_order = {band.name: index for index, band in enumerate(demand.bands)}
    keys = sorted((key for key in set(actual) | set(expected) if key[2] in known),
                  key=lambda k: (k[0], k[1], band_order[k[2]], INTERFACES.index(k[3])))
    # the band machinery's exact arithmetic costs tens of microseconds a line; the same (requests, forecast)
    # pair recurs across a month's thousands of lines, so each pair is measured once
    measured: dict[tuple[int, int | None], tuple[Decimal | None, str | None]] = {}
    lines = []
    for key in keys:
        requests, forecast = actual.get(key, 0), expected.get(key)
        measure = measured.get((requests, forecast))
        if measure is None:
            measure = measured[requests, forecast] = (
                bands.percent_of(requests, forecast) if forecast else None,
                bands.flag(requests, forecast, demand.threshold))
        lines.append(DemandLine(*key, requests=requests, forecast=forecast, percent=measure[0], exception=measure[1]))
    return DemandReport(period, first, last, tuple(band.name for band in demand.bands),
                        float(demand.threshold.high or 0), now, tuple(lines), dict(unclassified))
