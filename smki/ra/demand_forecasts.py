"""Repository demand forecasts (SEC Appendix P), received by the RA.

Each Repository user (an ARO of a Party with the Repository scope: the RA issued its Portal login and Web
Service API key) forecasts the Portal and Web Service requests it expects to make on a day, per time band
of ``policies/variance.yaml``'s ``repository_demand``, and keeps below 120% of it. The forecast is sent on
the ``repository_demand_forecast`` RAPP form by the user's Party (its SRO or an ARO acting for it): the
same channel and workflow as the CSR forecasts (:mod:`smki.ra.forecasts`), because the RA is the one that
knows which person is which Repository user and already records forecasts the Panel's reports read.

One forecast gives a run of days (``first_day`` to ``last_day``) the same figures. For any day the
forecast that counts is the newest covering it (highest id), whole: its bands replace every band of an
older forecast's day. A day that has begun cannot be forecast again, so a forecast amended after the
fact cannot hide an exception.

The Repository Demand Exceptions report (:mod:`smki.reports.demand`) reads forecasts only through
:func:`daily_forecasts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from smki.core.db import Base, Database
from smki.core.errors import Finding, SmkiError
from smki.core.policyfiles.variance import VariancePolicy
from smki.ra.lodging import repository_holder

BAD_DAYS = "FM:DMF01"
BAD_BANDS = "FM:DMF02"
DAY_BEGUN = "FM:DMF03"
NOT_A_USER = "FM:DMF04"
INTERFACES = ("portal", "web_service")


class RepositoryDemandForecast(Base):
    """One forecast as submitted: whose, which days, by whom and when."""

    __tablename__ = "ra_repository_demand_forecast"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("ra_person.id"))
    repository_user: Mapped[str] = mapped_column(String(128), index=True)  # the holder the request log names
    first_day: Mapped[dt.date] = mapped_column(Date, index=True)
    last_day: Mapped[dt.date] = mapped_column(Date, index=True)
    submission_id: Mapped[int | None] = mapped_column(Integer)
    submitted_by: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RepositoryDemandForecastBand(Base):
    """A forecast's daily requests in one time band."""

    __tablename__ = "ra_repository_demand_forecast_band"

    forecast_id: Mapped[int] = mapped_column(ForeignKey("ra_repository_demand_forecast.id", ondelete="CASCADE"),
                                             primary_key=True)
    band: Mapped[str] = mapped_column(String(32), primary_key=True)
    portal: Mapped[int] = mapped_column(Integer)
    web_service: Mapped[int] = mapped_column(Integer)


# --- checks the form's JSON Schema cannot make ------------------------------------------------------------

def _day(payload: dict[str, Any], field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(payload[field]))
    except ValueError:
        raise SmkiError(BAD_DAYS, f"{payload[field]!r} is not a date; write it as YYYY-MM-DD.", field=field) from None


def check_forecast(session: Session, policy: VariancePolicy, payload: dict[str, Any], now: dt.datetime) -> str:
    """Days in order, not too many and not begun, one figure pair for every configured band and no other,
    the person a Repository user of the Party. Raises FM:DMF0n with one finding per problem; returns the
    Repository user's name."""
    demand = policy.repository_demand
    user = repository_user(session, int(payload["organisation_id"]), int(payload["person_id"]))
    findings: list[Finding] = []
    first, last = _day(payload, "first_day"), _day(payload, "last_day")
    if last < first:
        findings.append(Finding(BAD_DAYS, f"last_day {last} is before first_day {first}", field="last_day"))
    elif (last - first).days + 1 > demand.forecast_days:
        findings.append(Finding(BAD_DAYS, f"{(last - first).days + 1} days; one forecast covers at most "
                                f"{demand.forecast_days}", field="last_day"))
    today = now.astimezone(ZoneInfo(policy.timezone)).date()
    if first <= today:
        findings.append(Finding(DAY_BEGUN, f"{first} has already begun (today is {today}); a forecast covers only "
                                "days to come", field="first_day"))
    configured = [band.name for band in demand.bands]
    for interface in INTERFACES:
        if len(payload[interface]) != len(configured):
            findings.append(Finding(BAD_BANDS, f"{interface} has {len(payload[interface])} figure(s); give one per "
                                    f"time band, in order: {', '.join(configured)}", field=interface))
    if findings:
        raise SmkiError(findings[0].code, f"{len(findings)} problem(s) with the Repository demand forecast; correct "
                        "them and submit again.", field=findings[0].field, details=findings)
    return user


def repository_user(session: Session, organisation_id: int, person_id: int) -> str:
    """The Repository user a person of the Party is: an approved ARO of it with the Repository scope."""
    from smki.ra.models import Appointment, Organisation, Person

    person = session.get(Person, person_id)
    appointment = session.scalars(select(Appointment).where(
        Appointment.person_id == person_id, Appointment.organisation_id == organisation_id,
        Appointment.role == "aro", Appointment.status == "approved",
        Appointment.scope_repository.is_(True))).first()
    if person is None or appointment is None:
        raise SmkiError(NOT_A_USER, f"person {person_id} is not a Repository user of organisation {organisation_id} "
                        "(an approved ARO of it with the repository scope); forecast for one of its Repository "
                        "users.", field="person_id")
    organisation = session.get(Organisation, person.organisation_id) if person.organisation_id else None
    return repository_holder(organisation.name if organisation else None, person.id)


# --- recording (the form's effect, in the form's unit of work) -------------------------------------------

def record_forecast(session: Session, policy: VariancePolicy, payload: dict[str, Any], *,
                    submission_id: int | None, submitted_by: int | None,
                    now: dt.datetime) -> RepositoryDemandForecast:
    user = repository_user(session, int(payload["organisation_id"]), int(payload["person_id"]))
    forecast = RepositoryDemandForecast(
        organisation_id=int(payload["organisation_id"]), person_id=int(payload["person_id"]), repository_user=user,
        first_day=_day(payload, "first_day"), last_day=_day(payload, "last_day"), submission_id=submission_id,
        submitted_by=submitted_by, submitted_at=now)
    session.add(forecast)
    session.flush()
    session.add_all([RepositoryDemandForecastBand(forecast_id=forecast.id, band=band.name,
                                                  **{i: int(payload[i][index]) for i in INTERFACES})
                     for index, band in enumerate(policy.repository_demand.bands)])
    session.flush()
    return forecast


# --- the public read -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BandForecast:
    """A Repository user's forecast requests for one band of one day, from the newest forecast covering it."""

    portal: int
    web_service: int
    forecast_id: int


def daily_forecasts(database: Database, first_day: dt.date,
                    last_day: dt.date) -> dict[tuple[str, dt.date, str], BandForecast]:
    """Every Repository user's forecast for each band of each day from ``first_day`` to ``last_day``, keyed by
    (Repository user, day, band)."""
    statement = (select(RepositoryDemandForecast.id, RepositoryDemandForecast.repository_user,
                        RepositoryDemandForecast.first_day, RepositoryDemandForecast.last_day,
                        RepositoryDemandForecastBand.band, RepositoryDemandForecastBand.portal,
                        RepositoryDemandForecastBand.web_service)
                 .join(RepositoryDemandForecastBand,
                       RepositoryDemandForecastBand.forecast_id == RepositoryDemandForecast.id)
                 .where(RepositoryDemandForecast.first_day <= last_day, RepositoryDemandForecast.last_day >= first_day)
                 .order_by(RepositoryDemandForecast.id))
    with database.session() as session:
        rows = session.execute(statement).all()
    newest: dict[tuple[str, dt.date], int] = {}
    for forecast_id, user, start, end, *_ in rows:
        day = max(start, first_day)
        while day <= min(end, last_day):
            newest[user, day] = forecast_id  # ascending ids: the newest is the last written
            day += dt.timedelta(days=1)
    found: dict[tuple[str, dt.date, str], BandForecast] = {}
    for forecast_id, user, start, end, band, portal, web_service in rows:
        day = max(start, first_day)
        while day <= min(end, last_day):
            if newest[user, day] == forecast_id:
                found[user, day, band] = BandForecast(portal, web_service, forecast_id)
            day += dt.timedelta(days=1)
    return found
