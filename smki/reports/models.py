"""Tables of the reports: one run per report and period (the claim that makes a scheduled report happen
exactly once however many schedulers run), and what each run produced."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class ReportRun(Base):
    """A report for one period: claimed under a lease, produced, lodged, delivered. The unique (report,
    period) is the claim: a second scheduler's insert fails, and only the holder of the lease may finish."""

    __tablename__ = "report_run"
    __table_args__ = (UniqueConstraint("report", "period", name="uq_report_run_report_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report: Mapped[str] = mapped_column(String(32))                 # csr_variance
    period: Mapped[str] = mapped_column(String(7))                  # 2026-11
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), index=True)     # pending, running, failed, delivered
    trigger: Mapped[str | None] = mapped_column(String(12))         # schedule | manual
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    produced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    lodged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    working_days_late: Mapped[int | None] = mapped_column(Integer)
    late: Mapped[bool | None] = mapped_column(Boolean)
    summary: Mapped[str | None] = mapped_column(Text)               # JSON: totals and exceptions, for the history


class ReportArtifact(Base):
    """One rendering of a run: the full or the published edition, as CSV, HTML or PDF."""

    __tablename__ = "report_artifact"

    run_id: Mapped[int] = mapped_column(ForeignKey("report_run.id", ondelete="CASCADE"), primary_key=True)
    edition: Mapped[str] = mapped_column(String(12), primary_key=True)    # full | published
    format: Mapped[str] = mapped_column(String(8), primary_key=True)      # csv | html | pdf
    media_type: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[str | None] = mapped_column(String(64))              # Repository document name, if lodged
    document_version: Mapped[int | None] = mapped_column(Integer)
