"""Producing, lodging and recording a report, exactly once per period however many schedulers run.

A run is claimed in the database: the first claimant inserts the (report, period) row, whose unique
constraint refuses a second; whoever then takes the lease (one conditional UPDATE, atomic on SQLite and
PostgreSQL) produces the report. A failure records the error and frees the lease after
``retry_after_minutes``; a process that dies holding the lease loses it when the lease runs out, and the
next check retries. A delivered run is never produced again.

Both editions are lodged in the Repository as documents (CSV, HTML, PDF), as SEC L8.10 asks: the published
edition for every Repository user, the full edition, which names the Subscribers with Forecast Exceptions,
for the Repository roles of the bodies in ``publication.full_readers`` only (the SEC Panel, ``sec_panel``;
the SMKI PMA, ``smki_pma``). A Repository user without one of those roles is not shown that the full
edition exists (:mod:`repository.audience`). Both editions are also kept with the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from repository.documents import DocumentStore
from smki.core.errors import SmkiError
from smki.core.months import month_index, month_name
from smki.core.times import now_utc as utc_now
from smki.core.times import utc as _utc
from smki.instance import Instance
from smki.reports import render, variance
from smki.reports.models import ReportArtifact, ReportRun
from smki.reports.workingdays import WorkingDays

log = logging.getLogger(__name__)

REPORT = "csr_variance"
FORMATS = ("csv", "html", "pdf")
ALREADY_DELIVERED = "WF:VAR03"
CLAIMED_ELSEWHERE = "WF:VAR04"
NO_SUCH_REPORT = "WF:VAR05"
NO_REPOSITORY_ROLE = "WF:VAR07"
# The RA role of each body L8.10 names as a reader of the full edition, and its role in the Repository.
REPOSITORY_ROLES = {"panel": "sec_panel", "pma": "smki_pma"}
LEASE = dt.timedelta(minutes=30)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Delivery:
    period: str
    due_date: dt.date
    status: str
    attempts: int
    produced_at: dt.datetime | None
    lodged_at: dt.datetime | None
    late: bool | None
    working_days_late: int | None
    trigger: str | None
    error: str | None
    documents: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: ReportRun, documents: tuple[str, ...] = ()) -> Delivery:
        return cls(row.period, row.due_date, row.status, row.attempts, _utc(row.produced_at), _utc(row.lodged_at),
                   row.late, row.working_days_late, row.trigger, row.error, documents)


class VarianceReporting:
    def __init__(self, instance: Instance, clock: Clock = utc_now) -> None:
        self.instance = instance
        self.database = instance.database
        self.policy = instance.policies.variance
        self.working_days = WorkingDays.from_policy(self.policy)
        self.clock = clock

    # --- when -------------------------------------------------------------------------------------------

    def due_date(self, month: str) -> dt.date:
        from smki.reports.workingdays import due_date
        return due_date(month, self.working_days, self.policy.due_working_day)

    def production_time(self, month: str) -> dt.datetime:
        """When the scheduled job produces ``month``'s report: ``produce_at`` o'clock, local time, on the
        Working Day ``produce_working_days_before_due`` before the due date."""
        from zoneinfo import ZoneInfo
        day = self.working_days.nth_before(self.due_date(month), self.policy.schedule.produce_working_days_before_due)
        return dt.datetime.combine(day, dt.time(self.policy.schedule.produce_at),
                                   tzinfo=ZoneInfo(self.policy.timezone)).astimezone(dt.UTC)

    def latest_ended_month(self) -> str:
        from zoneinfo import ZoneInfo
        local = self.clock().astimezone(ZoneInfo(self.policy.timezone))
        first = local.date().replace(day=1) - dt.timedelta(days=1)
        return f"{first:%Y-%m}"

    # --- the claim --------------------------------------------------------------------------------------

    def _claim(self, month: str, trigger: str) -> str | None:
        """The lease token if this caller now holds the run for ``month``; None if another does or it is
        delivered or out of attempts."""
        now = self.clock()
        try:
            with self.database.session() as session:
                session.execute(insert(ReportRun).values(report=REPORT, period=month, due_date=self.due_date(month),
                                                         status="pending", attempts=0, trigger=trigger))
        except IntegrityError:
            pass  # the run exists: whoever holds its lease is producing it, or it awaits a retry
        token = secrets.token_hex(16)
        free = or_(ReportRun.lease_until.is_(None), ReportRun.lease_until < now)
        if trigger == "schedule":
            free = free & (ReportRun.attempts < self.policy.schedule.max_attempts)
        else:  # an operator need not wait for the retry of a failed run
            free = free | (ReportRun.status == "failed")
        with self.database.session() as session:
            taken = session.execute(
                update(ReportRun).where(ReportRun.report == REPORT, ReportRun.period == month,
                                        ReportRun.status != "delivered", free)
                .values(status="running", lease_token=token, lease_until=now + LEASE, trigger=trigger,
                        attempts=ReportRun.attempts + 1)).rowcount  # type: ignore[attr-defined]
        return token if taken == 1 else None

    def _run_row(self, month: str) -> ReportRun | None:
        with self.database.session() as session:
            return session.scalars(select(ReportRun).where(ReportRun.report == REPORT,
                                                           ReportRun.period == month)).first()

    # --- producing ---------------------------------------------------------------------------------------

    def produce(self, month: str, *, trigger: str = "manual") -> Delivery:
        """Produce, lodge and record ``month``'s report, unless it is delivered or being produced."""
        variance.check_month(month, self.policy, self.clock())
        token = self._claim(month, trigger)
        if token is None:
            row = self._run_row(month)
            if row is not None and row.status == "delivered":
                raise SmkiError(ALREADY_DELIVERED, f"the {month} report was delivered at {_utc(row.lodged_at)}; "
                                "it is produced once.")
            raise SmkiError(CLAIMED_ELSEWHERE, f"the {month} report is being produced by another process, or "
                            "waits for its retry; see 'smki report history'.")
        try:
            return self._produce(month, token)
        except Exception as error:
            log.exception("CSR variance report for %s failed", month)
            retry = self.clock() + dt.timedelta(minutes=self.policy.schedule.retry_after_minutes)
            text = f"{error.code}: {error.message}" if isinstance(error, SmkiError) else repr(error)
            with self.database.session() as session:
                session.execute(update(ReportRun).where(ReportRun.lease_token == token)
                                .values(status="failed", error=text[:2000], lease_until=retry))
            raise

    def _produce(self, month: str, token: str) -> Delivery:
        full = variance.build(self.instance, month, now=self.clock())
        published = full.published(self.policy.publication.redact_exceptions)
        produced_at = self.clock()
        renderings = {(edition.edition, fmt): render.render(edition, fmt)
                      for edition in (full, published) for fmt in FORMATS}
        full_audience = self.full_audience()
        store = DocumentStore(self.database)
        prefix = self.policy.publication.document_prefix
        lodged: dict[tuple[str, str], tuple[str, int]] = {}
        for edition, infix, title, audience in (("published", "", "", None),
                                                ("full", "full-", ", full edition", full_audience)):
            for fmt in FORMATS:
                version = store.lodge(f"{prefix}-{month}-{infix}{fmt}", renderings[(edition, fmt)],
                                      title=f"CSR Forecast Variance Report {month}{title} ({fmt.upper()})",
                                      media_type=render.MEDIA_TYPES[fmt], lodged_by=self.policy.publication.lodged_by,
                                      file_name=f"csr-forecast-variance-{month}{'-full' if infix else ''}.{fmt}",
                                      audience=audience)
                lodged[(edition, fmt)] = (version.name, version.version)
        lodged_at = self.clock()
        delivered_on = lodged_at.astimezone(_zone(self.policy.timezone)).date()
        # a report lodged on the Saturday after a Friday due date is received one Working Day late
        late_by = max(self.working_days.between(full.due_date, delivered_on), int(delivered_on > full.due_date))
        with self.database.session() as session:
            row = session.scalars(select(ReportRun).where(ReportRun.lease_token == token)
                                  .with_for_update()).first()
            if row is None or row.status != "running":
                raise SmkiError(CLAIMED_ELSEWHERE, f"the lease on the {month} report was lost while producing it.")
            for (edition, fmt), content in renderings.items():
                document = lodged[(edition, fmt)]
                session.add(ReportArtifact(run_id=row.id, edition=edition, format=fmt,
                                           media_type=render.MEDIA_TYPES[fmt], content=content,
                                           sha256=hashlib.sha256(content).hexdigest(), document=document[0],
                                           document_version=document[1]))
            row.status, row.produced_at, row.lodged_at, row.error = "delivered", produced_at, lodged_at, None
            row.working_days_late, row.late = late_by, late_by > 0
            row.lease_token, row.lease_until = None, None
            row.summary = json.dumps(full.summary())
            session.flush()
            return Delivery.from_row(row, tuple(lodged[("published", fmt)][0] for fmt in FORMATS) +
                                     tuple(lodged[("full", fmt)][0] for fmt in FORMATS))

    # --- the schedule -----------------------------------------------------------------------------------

    def months_due(self) -> list[str]:
        """The months the schedule owes, oldest first: every ended month after the newest one it has a run for
        (so a month is never skipped because no scheduler was running in its production window: it is
        produced late, and its history says so), else, before any report, the latest ended month alone (a new
        sandbox owes no reports for the months before it existed)."""
        latest = self.latest_ended_month()
        with self.database.session() as session:
            newest = session.scalar(select(func.max(ReportRun.period)).where(ReportRun.report == REPORT))
        if newest is None:
            return [latest]
        # from the newest run's month itself: it may still be owed a retry
        return [month_name(index) for index in range(month_index(newest), month_index(latest) + 1)]

    def run_due(self) -> Delivery | None:
        """What the scheduled job does each time it wakes: produce each owed month's report (oldest first)
        once its production time has come; a failed attempt is retried on a later wake. Never raises.
        Answers the last delivery made, if any."""
        delivered = None
        for month in self.months_due():
            delivered = self._run_due_month(month) or delivered
        return delivered

    def _run_due_month(self, month: str) -> Delivery | None:
        if self.clock() < self.production_time(month):
            return None
        row = self._run_row(month)
        if row is not None and (row.status == "delivered" or row.attempts >= self.policy.schedule.max_attempts):
            return None
        try:
            return self.produce(month, trigger="schedule")
        except SmkiError as error:
            if error.code not in (CLAIMED_ELSEWHERE, ALREADY_DELIVERED):
                log.warning("CSR variance report for %s not produced: %s", month, error)
            return None
        except Exception:  # recorded on the run by produce(); the next wake retries
            return None

    # --- reading ----------------------------------------------------------------------------------------

    def history(self) -> list[Delivery]:
        with self.database.session() as session:
            return [Delivery.from_row(row) for row in session.scalars(
                select(ReportRun).where(ReportRun.report == REPORT).order_by(ReportRun.period.desc()))]

    def edition(self, month: str, edition: str, fmt: str) -> bytes:
        with self.database.session() as session:
            content = session.scalar(select(ReportArtifact.content).join(ReportRun).where(
                ReportRun.report == REPORT, ReportRun.period == month, ReportArtifact.edition == edition,
                ReportArtifact.format == fmt))
        if content is None:
            raise SmkiError(NO_SUCH_REPORT, f"no {edition} {fmt} edition of the {month} report has been produced.")
        return content

    def full_audience(self) -> tuple[str, ...]:
        """The Repository roles that read the full edition: those of ``publication.full_readers``."""
        readers = self.policy.publication.full_readers
        unknown = [reader for reader in readers if reader not in REPOSITORY_ROLES]
        if unknown or not readers:  # an empty audience would be everyone's: never for the full edition
            raise SmkiError(NO_REPOSITORY_ROLE, f"publication.full_readers is {list(readers)}: name one or more of "
                            f"{', '.join(REPOSITORY_ROLES)}, the bodies with a Repository role, as the full edition "
                            "is lodged for them alone.")
        return tuple(sorted(REPOSITORY_ROLES[reader] for reader in readers))


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)
