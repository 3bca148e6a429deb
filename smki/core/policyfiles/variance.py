"""``variance.yaml``: the CSR Forecast Variance Report (SEC L8.9, L8.10): which regime flags exceptions,
the bands, Working Days, when the report is produced and who reads the full version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from smki.core.policyfiles.base import Names, PolicyContext, PolicyModel, Problem, TupleOf

BAD_VARIANCE = "CA:CFG30"


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(BAD_VARIANCE, "an IANA time zone name, such as Europe/London") from None
    return name


def _calendar(country: str) -> str:
    import holidays

    if country not in holidays.list_supported_countries():
        raise PydanticCustomError(BAD_VARIANCE, "a country code of the holidays library, such as GB")
    return country


Percent = Annotated[float, Field(gt=0, le=10000)]


class Band(PolicyModel):
    """A ratio of actual to forecast, in percent, that flags a line: at or above ``high``, at or below ``low``."""

    high: Percent | None = None
    """Flag at or above this percentage of the forecast; null: never."""
    low: Percent | None = None
    """Flag at or below this percentage of the forecast; null: never (L8.9 has no exception for fewer)."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if self.high is not None and self.low is not None and self.low >= self.high:
            yield Problem(("low",), f"a percentage below high ({self.high})", self.low, BAD_VARIANCE)


class WorkingDays(PolicyModel):
    """Monday to Friday less the bank holidays of a region, from the ``holidays`` library."""

    country: Annotated[str, AfterValidator(_calendar)] = "GB"
    subdivision: str | None = "ENG"
    """England and Wales share their bank holidays; ENG names them in the library."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        import holidays

        subdivisions = holidays.list_supported_countries().get(self.country, [])
        if self.subdivision is not None and self.subdivision not in subdivisions:
            yield Problem(("subdivision",), f"one of {', '.join(subdivisions)}", self.subdivision, BAD_VARIANCE)


class Mp160(PolicyModel):
    """The MP160 regime: a month above ``ratio`` of the trailing average without an exceptional-demand notice."""

    ratio: Percent = 150
    trailing_months: Annotated[int, Field(ge=1, le=24)] = 6


class Counting(PolicyModel):
    """Which CSRs count. Every CSR received counts once, whatever its outcome: issued, refused by the RA,
    rejected by the subscriber afterwards. ``malformed`` decides the CSRs refused before any decision."""

    malformed: bool = True
    """Count CSRs refused as malformed (CSR_ERROR) within a batch or an ad hoc call."""


class Schedule(PolicyModel):
    produce_working_days_before_due: Annotated[int, Field(ge=0, le=9)] = 2
    """Produce the report this many Working Days before it is due (0: on the due date)."""
    produce_at: Annotated[int, Field(ge=0, le=23)] = 6
    """Hour of that day, in ``timezone``, from which the scheduled job produces it."""
    check_every_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    retry_after_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    """A failed attempt (or one whose process died) is retried after this long."""
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 10


class Publication(PolicyModel):
    document_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = "csr-forecast-variance"
    """Repository document names: <prefix>-<YYYY-MM>-<csv|html|pdf>."""
    redact_exceptions: bool = True
    """The Panel's default under L8.10: Subscribers with a Forecast Exception are not named in the published
    version (their figures stay in the totals)."""
    full_readers: Names = ("pma", "panel")
    """RA roles that may read the full (unredacted) version."""
    lodged_by: str = "DCC CSR variance reporting"


TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class TimeBand(PolicyModel):
    """One time band of the day: from ``start`` (local time, inclusive) to the next band's start."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    start: Annotated[str, Field(pattern=TIME_OF_DAY)]
    """HH:MM in the policy's ``timezone``; a request at exactly this time is in this band."""

    @property
    def minutes(self) -> int:
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)


class Interfaces(PolicyModel):
    """Which request-log operations are requests of each Repository interface."""

    portal: Names = ("portal_search", "portal_view", "portal_download")
    web_service: Names = ("certificatesearch", "retrievecertificate")


class RepositoryDemand(PolicyModel):
    """Appendix P: each Repository user keeps below ``threshold.high`` percent (120) of its forecast of daily
    Portal and Web Service requests, per time band. The bands partition the day: the first starts at 00:00,
    each runs to the next one's start, the last to midnight."""

    bands: TupleOf[TimeBand] = (TimeBand(name="night", start="00:00"), TimeBand(name="core", start="07:00"),
                                   TimeBand(name="evening", start="20:00"))
    threshold: Band = Band(high=120)
    interfaces: Interfaces = Interfaces()
    forecast_days: Annotated[int, Field(ge=1, le=366)] = 92
    """The longest run of days one forecast may cover."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if not self.bands or self.bands[0].start != "00:00":
            yield Problem(("bands", 0, "start"), "the first band starting at 00:00, so the bands cover the day",
                          self.bands[0].start if self.bands else None, BAD_VARIANCE)
        for index in range(1, len(self.bands)):
            if self.bands[index].minutes <= self.bands[index - 1].minutes:
                yield Problem(("bands", index, "start"), f"a time after {self.bands[index - 1].start} (bands in "
                              "order of their start)", self.bands[index].start, BAD_VARIANCE)
        names = [band.name for band in self.bands]
        for index, name in enumerate(names):
            if name in names[:index]:
                yield Problem(("bands", index, "name"), "a name no other band has", name, BAD_VARIANCE)
        if self.threshold.high is None:
            yield Problem(("threshold", "high"), "a percentage (Appendix P: 120)", None, BAD_VARIANCE)
        seen: dict[str, str] = {}
        for interface in ("portal", "web_service"):
            operations: tuple[str, ...] = getattr(self.interfaces, interface)
            for operation in operations:
                if operation in seen:
                    yield Problem(("interfaces", interface), f"operations not already under {seen[operation]}",
                                  operation, BAD_VARIANCE)
                seen[operation] = interface


class VariancePolicy(PolicyModel):
    regime: Literal["l8_9", "mp160"] = "l8_9"
    """l8_9: forecasts and the 110% Forecast Exception; mp160: exceptional-demand notices only."""
    timezone: Annotated[str, AfterValidator(_zone)] = "Europe/London"
    """Months, Working Days and production times are counted in this zone."""
    working_days: WorkingDays = WorkingDays()
    due_working_day: Annotated[int, Field(ge=1, le=30)] = 10
    forecast_months: Annotated[int, Field(ge=1, le=24)] = 8
    """Each quarter's forecast covers this many months from the quarter's first month."""
    forecast_exception: Band = Band(high=110)
    service_request: Band = Band(high=110, low=90)
    """H3.24's band, for the Service Request variance report sharing this machinery."""
    mp160: Mp160 = Mp160()
    counting: Counting = Counting()
    schedule: Schedule = Schedule()
    publication: Publication = Publication()
    repository_demand: RepositoryDemand = RepositoryDemand()
    """Appendix P's 120%-of-forecast rule for Repository users (the Repository Demand Exceptions report)."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        for name in ("working_days", "forecast_exception", "service_request"):
            section: PolicyModel = getattr(self, name)
            yield from (Problem((name, *p.loc), p.expected, p.found, p.code) for p in section.problems(context))
        yield from (Problem(("repository_demand", *p.loc), p.expected, p.found, p.code)
                    for p in self.repository_demand.problems(context))
