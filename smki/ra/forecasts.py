"""CSR forecasts (SEC L8.9) and exceptional-demand notices (the MP160 proposal), received by the RA.

An Authorised Subscriber's ARO (or SRO) submits a forecast each quarter on the ``csr_forecast`` form:
for each of the eight months from the quarter's first month, the Device Certificate CSRs it expects,
single and batched, and its Organisation CSRs. A later forecast amends an earlier one month by month:
for any month the baseline is the most recent forecast that covers it (:func:`baselines`). A month that
has already begun cannot be forecast again: a forecast amended after the fact would hide the very
exception the report exists to show.

The Variance Report (:mod:`smki.reports`) reads forecasts and notices only through :func:`baselines`,
:func:`notices` and :func:`subscriber_names`; it never reads these tables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from smki.core.db import Base, Database
from smki.core.errors import Finding, SmkiError
from smki.core.months import month_index, month_name, month_start
from smki.core.policyfiles.variance import VariancePolicy
from smki.ra.eligibility import is_authorised_subscriber

NOT_IN_WINDOW = "FM:FCS01"
UNEVEN_MONTHS = "FM:FCS02"
MONTH_BEGUN = "FM:FCS03"
NOT_A_SUBSCRIBER = "FM:FCS04"
BAD_QUARTER = "FM:FCS05"

QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
KINDS = ("device_single", "device_batched", "organisation")


# --- tables ---------------------------------------------------------------------------------------------

class CsrForecast(Base):
    """One forecast as submitted: which quarter it is for, by whom and when."""

    __tablename__ = "ra_csr_forecast"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    quarter: Mapped[str] = mapped_column(String(7))                 # 2027-Q1
    submission_id: Mapped[int | None] = mapped_column(Integer)      # the RAPP form submission
    submitted_by: Mapped[int | None] = mapped_column(Integer)       # person id
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CsrForecastMonth(Base):
    """One month of a forecast. The newest forecast (highest id) covering a month is its baseline."""

    __tablename__ = "ra_csr_forecast_month"

    forecast_id: Mapped[int] = mapped_column(ForeignKey("ra_csr_forecast.id", ondelete="CASCADE"),
                                             primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True, index=True)   # 2027-02
    organisation_id: Mapped[int] = mapped_column(Integer, index=True)  # denormalised: the baseline query's key
    device_single: Mapped[int] = mapped_column(Integer)
    device_batched: Mapped[int] = mapped_column(Integer)
    organisation: Mapped[int] = mapped_column(Integer)


class DemandNotice(Base):
    """An exceptional-demand notice (MP160): the Subscriber expects more than usual in a month."""

    __tablename__ = "ra_demand_notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    expected_device_csrs: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    submission_id: Mapped[int | None] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# --- months and quarters --------------------------------------------------------------------------------

def quarter_window(quarter: str, months: int) -> list[str]:
    """The months a quarter's forecast covers: ``months`` of them from the quarter's first month."""
    found = QUARTER.match(quarter)
    if found is None:
        raise SmkiError(BAD_QUARTER, f"{quarter!r} is not a quarter; write it as YYYY-Qn, for example 2027-Q1.",
                        field="quarter")
    first = int(found[1]) * 12 + (int(found[2]) - 1) * 3
    return [month_name(first + i) for i in range(months)]


# --- checks the form's JSON Schema cannot make ------------------------------------------------------------

def forecast_months(policy: VariancePolicy, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The payload as one line per month: {month, device_single, device_batched, organisation}."""
    window = quarter_window(str(payload["quarter"]), policy.forecast_months)
    first = month_index(str(payload.get("from_month") or window[0]))
    columns = {kind: list(payload.get(kind) or ()) for kind in KINDS}
    length = max(len(values) for values in columns.values())
    return [{"month": month_name(first + i), **{kind: int(values[i]) if i < len(values) else 0
                                                 for kind, values in columns.items()}} for i in range(length)]


def check_forecast(session: Session, policy: VariancePolicy, payload: dict[str, Any], now: dt.datetime) -> None:
    """Every month in the quarter's window and not yet begun, the same number of months in every figure,
    the Party an Authorised Subscriber. Raises FM:FCS0n with one finding per problem, so that the
    submitter corrects them all at once."""
    _check_subscriber(session, int(payload["organisation_id"]))
    window = quarter_window(str(payload["quarter"]), policy.forecast_months)
    findings: list[Finding] = []
    lengths = {kind: len(payload[kind]) for kind in KINDS if payload.get(kind) is not None}
    if len(set(lengths.values())) > 1:
        findings.append(Finding(UNEVEN_MONTHS, "give the same number of months for every figure: "
                                + ", ".join(f"{kind} has {n}" for kind, n in lengths.items()), field="device_single"))
    for line in forecast_months(policy, payload):
        month = line["month"]
        if month not in window:
            findings.append(Finding(NOT_IN_WINDOW, f"{month} is outside the {payload['quarter']} forecast, which "
                                    f"covers {window[0]} to {window[-1]}", field="from_month"))
        elif month_start(month, policy.timezone) <= now:
            findings.append(Finding(MONTH_BEGUN, f"{month} has already begun; a forecast covers only months to "
                                    "come (give from_month to amend the later months only)", field="from_month"))
    if findings:
        raise SmkiError(findings[0].code, f"{len(findings)} problem(s) with the forecast's months; correct them "
                        "and submit again.", field=findings[0].field, details=findings)


def check_notice(session: Session, policy: VariancePolicy, payload: dict[str, Any], now: dt.datetime) -> None:
    _check_subscriber(session, int(payload["organisation_id"]))
    month = str(payload["month"])
    index = month_index(month)
    # a notice is given ahead of the demand, or during the month it happens in, never after
    if month_start(month_name(index + 1), policy.timezone) <= now:
        raise SmkiError(MONTH_BEGUN, f"{month} has ended; exceptional demand is notified before or during the "
                        "month.", field="month")


def _check_subscriber(session: Session, organisation_id: int) -> None:
    if not is_authorised_subscriber(session, organisation_id, "device") and \
            not is_authorised_subscriber(session, organisation_id, "organisation"):
        raise SmkiError(NOT_A_SUBSCRIBER, f"organisation {organisation_id} is not an Authorised Subscriber; only "
                        "Authorised Subscribers forecast their CSRs.", field="organisation_id")


# --- recording (the form's effect, in the form's unit of work) -------------------------------------------

def record_forecast(session: Session, policy: VariancePolicy, payload: dict[str, Any], *,
                    submission_id: int | None, submitted_by: int | None, now: dt.datetime) -> CsrForecast:
    forecast = CsrForecast(organisation_id=int(payload["organisation_id"]), quarter=str(payload["quarter"]),
                           submission_id=submission_id, submitted_by=submitted_by, submitted_at=now)
    session.add(forecast)
    session.flush()
    session.add_all([CsrForecastMonth(forecast_id=forecast.id, organisation_id=forecast.organisation_id, **line)
                     for line in forecast_months(policy, payload)])
    session.flush()
    return forecast


def record_notice(session: Session, payload: dict[str, Any], *, submission_id: int | None,
                  now: dt.datetime) -> DemandNotice:
    notice = DemandNotice(organisation_id=int(payload["organisation_id"]), month=str(payload["month"]),
                          expected_device_csrs=int(payload["expected_device_csrs"]), reason=str(payload["reason"]),
                          submission_id=submission_id, submitted_at=now)
    session.add(notice)
    session.flush()
    return notice


# --- the public reads ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Baseline:
    """A Subscriber's forecast for one month, from the newest forecast covering it."""

    organisation_id: int
    month: str
    device_single: int
    device_batched: int
    organisation: int
    forecast_id: int

    @property
    def device(self) -> int:
        return self.device_single + self.device_batched


def baselines(database: Database, months: Collection[str]) -> dict[tuple[int, str], Baseline]:
    """The baseline of every Subscriber for each of ``months``, keyed by (organisation id, month)."""
    if not months:
        return {}
    newest = (select(CsrForecastMonth.organisation_id, CsrForecastMonth.month,
                     func.max(CsrForecastMonth.forecast_id).label("forecast_id"))
              .where(CsrForecastMonth.month.in_(sorted(months)))
              .group_by(CsrForecastMonth.organisation_id, CsrForecastMonth.month).subquery())
    statement = select(CsrForecastMonth).join(newest, (CsrForecastMonth.forecast_id == newest.c.forecast_id)
                                              & (CsrForecastMonth.month == newest.c.month))
    with database.session() as session:
        return {(row.organisation_id, row.month): Baseline(row.organisation_id, row.month, row.device_single,
                                                           row.device_batched, row.organisation, row.forecast_id)
                for row in session.scalars(statement)}


def notices(database: Database, months: Collection[str]) -> set[tuple[int, str]]:
    """(organisation id, month) of every exceptional-demand notice for ``months``."""
    if not months:
        return set()
    with database.session() as session:
        return {(row.organisation_id, row.month) for row in session.execute(
            select(DemandNotice.organisation_id, DemandNotice.month).where(DemandNotice.month.in_(sorted(months))))}


def subscriber_names(database: Database, organisation_ids: Iterable[int]) -> dict[int, str]:
    from smki.ra.models import Organisation

    ids = sorted(set(organisation_ids))
    if not ids:
        return {}
    with database.session() as session:
        return {row.id: row.name for row in session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids)))}
