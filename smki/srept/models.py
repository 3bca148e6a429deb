"""Tables of smki.srept: SREPT runs, the interactions recorded while a run is open, and which scenarios each
interaction counted for.

No foreign keys to other areas' tables: a run names its Party by the RA's organisation number only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class SreptRun(Base):
    """One rehearsal of one Party: open -> closed (ended without a pass) or passed (an RA operator recorded
    the Party's SREPT pass on the strength of it)."""

    __tablename__ = "srept_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | closed | passed
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Only the key's digest: requests carrying the key (X-SREPT-Run-Key) are recorded for this run even when
    # they carry no credential, or one that does not authenticate (the negative scenarios need that).
    run_key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    catalogue_sha256: Mapped[str] = mapped_column(String(64))
    scenarios: Mapped[list[str]] = mapped_column(JSON)  # the scenario ids that apply to the Party, at opening
    rehearsal_granted: Mapped[list[str]] = mapped_column(JSON)  # the Certificate Policies the run granted
    pass_recorded_by: Mapped[str | None] = mapped_column(String(128))
    pass_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pack_sha256: Mapped[str | None] = mapped_column(String(64))  # the manifest digest the pass rests on


class SreptInteraction(Base):
    """One request of the Party's AROs or systems and the sandbox's answer, as recorded (bodies up to the
    recording limit; credentials never: only their kind and whose they are)."""

    __tablename__ = "srept_interaction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("srept_run.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    credential_kind: Mapped[str] = mapped_column(String(24))
    credential_holder: Mapped[str | None] = mapped_column(String(160))
    person_id: Mapped[int | None] = mapped_column(Integer)
    declared_scenario: Mapped[str | None] = mapped_column(String(32))
    http_status: Mapped[int] = mapped_column(Integer)
    service_status: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(16))
    audit_reference: Mapped[str | None] = mapped_column(String(80))
    elapsed_ms: Mapped[int] = mapped_column(Integer)
    request_type: Mapped[str | None] = mapped_column(String(128))
    request_body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    request_truncated: Mapped[bool] = mapped_column(Boolean)
    response_type: Mapped[str | None] = mapped_column(String(128))
    response_body: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    response_truncated: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)  # an attestation's words


class SreptMatch(Base):
    """An interaction that counted for a scenario, and whether it passed it."""

    __tablename__ = "srept_match"
    __table_args__ = (Index("ix_srept_match_run_scenario", "run_id", "scenario_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("srept_run.id"))
    scenario_id: Mapped[str] = mapped_column(String(32))
    interaction_id: Mapped[int] = mapped_column(ForeignKey("srept_interaction.id"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
