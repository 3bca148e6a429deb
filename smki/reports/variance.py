"""The CSR Forecast Variance Report (SEC L8.9) for one month: each Authorised Subscriber's CSRs against its
forecast, the totals, and the Forecast Exceptions; and the published edition the Panel's redaction makes
of it (L8.10).

The figures come from public functions only: forecasts and notices from the RA
(:mod:`smki.ra.forecasts`), CSR volumes from one aggregate query (:mod:`smki.devicecsr.volumes`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from smki.core.errors import SmkiError
from smki.core.months import MONTH, month_index, month_name, month_start
from smki.core.policyfiles.variance import VariancePolicy
from smki.devicecsr.volumes import csr_volumes
from smki.instance import Instance
from smki.ra import forecasts
from smki.reports import bands
from smki.reports.workingdays import WorkingDays, due_date

BAD_MONTH = "FM:VAR01"
MONTH_NOT_ENDED = "WF:VAR02"
MP160 = "mp160"
REASONS = {bands.HIGH: "at or above {high}% of forecast", bands.LOW: "at or below {low}% of forecast",
           bands.NO_FORECAST: "CSRs in a month with no forecast",
           MP160: "above {ratio}% of the trailing average, no exceptional-demand notice"}


@dataclass(frozen=True)
class Volumes:
    device_single: int = 0
    device_batched: int = 0
    organisation: int = 0

    @property
    def device(self) -> int:
        return self.device_single + self.device_batched

    def __add__(self, other: Volumes) -> Volumes:
        return Volumes(self.device_single + other.device_single, self.device_batched + other.device_batched,
                       self.organisation + other.organisation)


@dataclass(frozen=True)
class SubscriberLine:
    organisation_id: int | None          # None once redacted
    name: str
    actual: Volumes
    forecast: Volumes | None             # None: no forecast covers the month
    percent: Decimal | None              # Device CSRs as a percentage of the Device forecast
    trailing_average: Decimal | None     # MP160: the Subscriber's average monthly Device CSRs before the month
    notice: bool                         # MP160: an exceptional-demand notice was given for the month
    exception: str | None                # bands.HIGH, bands.LOW, bands.NO_FORECAST, MP160, or None
    redacted: bool = False


@dataclass(frozen=True)
class VarianceReport:
    month: str
    regime: str
    edition: str                         # full | published
    due_date: dt.date
    produced_at: dt.datetime
    lines: tuple[SubscriberLine, ...]
    reasons: dict[str, str]

    @property
    def exceptions(self) -> tuple[SubscriberLine, ...]:
        return tuple(line for line in self.lines if line.exception)

    @property
    def total_actual(self) -> Volumes:
        return sum((line.actual for line in self.lines), Volumes())

    @property
    def total_forecast(self) -> Volumes:
        return sum((line.forecast for line in self.lines if line.forecast), Volumes())

    @property
    def total_percent(self) -> Decimal | None:
        return bands.percent_of(self.total_actual.device, self.total_forecast.device)

    def published(self, redact: bool) -> VarianceReport:
        """The edition for publication: with ``redact``, no Subscriber with a Forecast Exception is named
        (L8.10); its figures stay in the totals so the headline is the same in both editions."""
        lines, withheld = [], 0
        for line in self.lines:
            if redact and line.exception:
                withheld += 1
                line = dataclasses.replace(line, organisation_id=None, name=f"Subscriber withheld ({withheld})",
                                           redacted=True)
            lines.append(line)
        return dataclasses.replace(self, edition="published", lines=tuple(lines))

    def summary(self) -> dict[str, object]:
        return {"month": self.month, "regime": self.regime, "subscribers": len(self.lines),
                "device_actual": self.total_actual.device, "device_forecast": self.total_forecast.device,
                "organisation_actual": self.total_actual.organisation,
                "exceptions": [{"organisation_id": line.organisation_id, "exception": line.exception}
                               for line in self.exceptions]}


def check_month(month: str, policy: VariancePolicy, now: dt.datetime) -> None:
    if not MONTH.match(month):
        raise SmkiError(BAD_MONTH, f"{month!r} is not a month; give it as YYYY-MM, for example 2026-11.",
                        field="month")
    if month_start(month_name(month_index(month) + 1), policy.timezone) > now:
        raise SmkiError(MONTH_NOT_ENDED, f"{month} has not ended yet; its report can be produced once it has.",
                        field="month")


def build(instance: Instance, month: str, *, now: dt.datetime | None = None) -> VarianceReport:
    """The full edition of the report for ``month``: one aggregate count, one read of the baselines."""
    policy = instance.policies.variance
    now = now or dt.datetime.now(dt.UTC)
    check_month(month, policy, now)
    trailing = policy.mp160.trailing_months if policy.regime == MP160 else 0
    first = month_index(month) - trailing
    labels = [month_name(first + i) for i in range(trailing + 1)]
    starts = [month_start(month_name(first + i), policy.timezone) for i in range(trailing + 2)]

    actual: dict[int, Volumes] = {}
    history: dict[int, int] = {}
    for volume in csr_volumes(instance.database, starts, labels, count_malformed=policy.counting.malformed):
        if volume.month == month:
            actual[volume.organisation_id] = actual.get(volume.organisation_id, Volumes()) + Volumes(
                **{volume.kind: volume.csrs})
        elif volume.kind != "organisation":
            history[volume.organisation_id] = history.get(volume.organisation_id, 0) + volume.csrs
    baselines = forecasts.baselines(instance.database, [month])
    forecast = {organisation_id: Volumes(b.device_single, b.device_batched, b.organisation)
                for (organisation_id, _), b in baselines.items()}
    notices = {organisation_id for organisation_id, _ in forecasts.notices(instance.database, [month])}
    names = forecasts.subscriber_names(instance.database, set(actual) | set(forecast))

    lines = []
    for organisation_id in sorted(set(actual) | set(forecast), key=lambda o: (names.get(o, ""), o)):
        sent, expected = actual.get(organisation_id, Volumes()), forecast.get(organisation_id)
        average = Fraction(history.get(organisation_id, 0), trailing) if trailing else None
        exception: str | None
        if policy.regime == MP160:
            exception = MP160 if sent.device and organisation_id not in notices and \
                bands.above(sent.device, average or Fraction(0), policy.mp160.ratio) else None
        else:
            exception = bands.flag(sent.device, expected.device if expected else None, policy.forecast_exception)
        lines.append(SubscriberLine(
            organisation_id, names.get(organisation_id, f"organisation {organisation_id}"), sent, expected,
            bands.percent_of(sent.device, expected.device) if expected else None,
            Decimal(average.numerator) / Decimal(average.denominator) if average is not None else None,
            organisation_id in notices, exception))
    reasons = {key: text.format(high=_num(policy.forecast_exception.high), low=_num(policy.forecast_exception.low),
                                ratio=_num(policy.mp160.ratio)) for key, text in REASONS.items()}
    return VarianceReport(month, policy.regime, "full", due_date(month, WorkingDays.from_policy(policy),
                                                                 policy.due_working_day),
                          now, tuple(lines), reasons)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
