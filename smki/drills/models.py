"""Tables of smki.drills, in the HOST database: the drill index and results (a drill's own world keeps its
hierarchy, Parties, custody and estate in a database of its own), so that the host's portal and API list and
show drills without opening any world."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class DrillRun(Base):
    """One ``smki drill run``: the scenario, its seed and options, where its world is, how far it got."""

    __tablename__ = "drill_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)          # devices, types, faults
    # created, running, paused, completed, failed
    status: Mapped[str] = mapped_column(String(12), index=True)
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    world_dir: Mapped[str] = mapped_column(Text)
    world_schema: Mapped[str | None] = mapped_column(String(40))     # the world's PostgreSQL schema (else SQLite)
    started_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The process running it holds a lease, renewed at every step and every chunk of devices; a run whose lease
    # ran out (its process died) may be resumed by another.
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Progress, for the command line and the portal.
    phase: Mapped[str | None] = mapped_column(String(16))
    step_id: Mapped[str | None] = mapped_column(String(40))
    devices_total: Mapped[int] = mapped_column(Integer, default=0)
    devices_done: Mapped[int] = mapped_column(Integer, default=0)
    devices_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the steps found out and pass on to later ones (the compromised serials, decisions, rotations).
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_text: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[str | None] = mapped_column(String(64))     # the report lodged in the Repository


class DrillStep(Base):
    """One step of a run, in scenario order: who did it, when, what came of it, and its artefacts."""

    __tablename__ = "drill_step"

    run_id: Mapped[int] = mapped_column(ForeignKey("drill_run.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_id: Mapped[str] = mapped_column(String(40))
    phase: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[str] = mapped_column(String(1))
    target_minutes: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10))               # pending, running, done, failed, skipped
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    artefacts: Mapped[list[dict[str, str]]] = mapped_column(JSON)


class DrillDevice(Base):
    """One device the compromise affects (or the post-recovery check read): its cells before and after, and
    what became of it."""

    __tablename__ = "drill_device"

    run_id: Mapped[int] = mapped_column(ForeignKey("drill_run.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    device_type: Mapped[str] = mapped_column(String(16))
    party: Mapped[str | None] = mapped_column(String(200))
    faults: Mapped[list[str]] = mapped_column(JSON)
    # affected (holds the compromised key), recovered, failed (a command was refused), residual (still exposed
    # at the post-recovery check), not_affected
    status: Mapped[str] = mapped_column(String(12), index=True)
    codes: Mapped[dict[str, Any]] = mapped_column(JSON)            # cell -> status code of the last command
    reason: Mapped[str | None] = mapped_column(Text)
    cells_before: Mapped[list[str]] = mapped_column(JSON)          # the exposed cells at the start
    cells_after: Mapped[list[str]] = mapped_column(JSON)           # the exposed cells at the check
    recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
