"""Running a drill: create its world, execute its scenario's steps in order, pause, resume, report progress.

The host database holds the run (:mod:`smki.drills.models`). A run is executed by one process at a time, under
a lease renewed at every step and every chunk of devices; ``pause`` asks it to stop before its next step;
``resume`` (or any process, once the lease of a crashed one has run out) carries on from the first step not
done. Steps are recorded ``running`` before they start and ``done`` with their outcome after; what a step
found out for later steps is saved with its ``done`` mark, in the same transaction.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import logging
import random
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from smki.core.db import rows_affected
from smki.core.errors import SmkiError
from smki.core.policyfiles.recovery import Scenario, load_scenario
from smki.core.times import now_utc, utc
from smki.drills import exposure, faults
from smki.drills.actions import HANDLERS, Context
from smki.drills.models import DrillDevice, DrillRun, DrillStep
from smki.drills.world import World, drop_schema, world_location
from smki.estate.sending import DeviceOutcome
from smki.instance import Instance

log = logging.getLogger("smki.drills")

CREATED, RUNNING, PAUSED, COMPLETED, FAILED = "created", "running", "paused", "completed", "failed"
UNKNOWN_RUN = "DR:RUN1"
BUSY = "DR:RUN2"          # another process is running it
FINISHED = "DR:RUN3"      # nothing left to do
NOT_READY = "DR:RUN4"     # a step's preconditions are not done
LEASE = dt.timedelta(minutes=5)


class DrillError(SmkiError):
    """The drill cannot do what was asked; nothing was changed."""

    status = 409


@dataclass(frozen=True)
class Progress:
    """What the command line and the portal show of a run."""

    run_id: int
    scenario: str
    status: str
    phase: str | None
    step: str | None
    steps_done: int
    steps_total: int
    devices_done: int
    devices_total: int
    rate: float | None            # devices per second in the current send
    seconds_left: float | None
    pause_requested: bool
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Drills:
    """Drills of one host instance."""

    def __init__(self, host: Instance) -> None:
        self.host = host
        self.database = host.database

    # --- creating and reading -----------------------------------------------------------------------

    def create(self, scenario_name: str, *, devices: int | None = None, seed: int | None = None,
               types: str | None = None, faults_text: str | None = None, started_by: str = "smki drill") -> int:
        """Record a new run of ``scenario_name`` (its file is checked now: ``CA:CFG50``/``CA:CFG51``)."""
        scenario = load_scenario(self.host.settings.policies_dir, scenario_name)
        fault_counts = faults.parse(faults_text) if faults_text is not None else scenario.faults.model_dump()
        if devices is not None and devices < 1:
            raise DrillError("DR:OPT1", f"--devices is at least 1, not {devices}", field="devices")
        seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
        options = {"devices": devices or scenario.devices, "types": types or scenario.types, "faults": fault_counts}
        with self.database.session() as session:
            run = DrillRun(scenario=scenario.id, title=scenario.title, seed=seed, options=options, status=CREATED,
                           pause_requested=False, world_dir="", started_by=started_by[:128], created_at=now_utc(),
                           devices_total=0, devices_done=0, context={})
            session.add(run)
            session.flush()
            directory, schema = world_location(self.host, run.id)
            run.world_dir, run.world_schema = str(directory), schema
            for position, (phase, step) in enumerate(scenario.steps):
                session.add(DrillStep(run_id=run.id, position=position, step_id=step.id, phase=phase,
                                      title=step.title, actor_role=step.actor, action=step.action,
                                      confidence=step.confidence, target_minutes=step.target_minutes,
                                      status="pending", detail={}, artefacts=[]))
            return run.id

    def _run(self, session: Session, run_id: int) -> DrillRun:
        run = session.get(DrillRun, run_id)
        if run is None:
            raise DrillError(UNKNOWN_RUN, f"there is no drill run {run_id}; `smki drill list` lists them",
                             field="run")
        return run

    def list(self, limit: int = 100) -> builtins.list[dict[str, Any]]:
        with self.database.session() as session:
            runs = session.execute(select(DrillRun).order_by(DrillRun.id.desc()).limit(limit)).scalars().all()
            return [{"id": r.id, "scenario": r.scenario, "title": r.title, "seed": r.seed, "status": r.status,
                     "created_at": r.created_at.isoformat(), "started_by": r.started_by,
                     "devices": r.options.get("devices")} for r in runs]

    def progress(self, run_id: int) -> Progress:
        with self.database.session() as session:
            run = self._run(session, run_id)
            counts = dict(session.execute(select(DrillStep.status, func.count()).where(DrillStep.run_id == run_id)
                                          .group_by(DrillStep.status)).all())
            rate = left = None
            started = utc(run.devices_started_at)
            at = utc(run.progress_at)
            if started and at and run.devices_done and at > started:
                rate = run.devices_done / (at - started).total_seconds()
                left = max(0, run.devices_total - run.devices_done) / rate if rate else None
            return Progress(run.id, run.scenario, run.status, run.phase, run.step_id,
                            counts.get("done", 0) + counts.get("skipped", 0), sum(counts.values()),
                            run.devices_done, run.devices_total, rate, left, run.pause_requested,
                            f"{run.error_code} {run.error_text}" if run.error_code else None)

    def steps(self, run_id: int) -> builtins.list[dict[str, Any]]:
        with self.database.session() as session:
            self._run(session, run_id)
            return [_step_dict(s) for s in session.execute(select(DrillStep).where(DrillStep.run_id == run_id)
                                                         .order_by(DrillStep.position)).scalars()]

    # --- pausing -------------------------------------------------------------------------------------

    def pause(self, run_id: int) -> str:
        """Ask the run to stop before its next step (a run not running is paused at once)."""
        with self.database.session() as session:
            run = self._run(session, run_id)
            if run.status in (COMPLETED,):
                raise DrillError(FINISHED, f"drill {run_id} is {run.status}; there is nothing to pause")
            if run.status == RUNNING:
                run.pause_requested = True
            else:
                run.status, run.pause_requested = PAUSED, False
            return run.status

    # --- executing -----------------------------------------------------------------------------------

    def _claim(self, run_id: int) -> str:
        token = uuid.uuid4().hex
        now = now_utc()
        with self.database.session() as session:
            run = self._run(session, run_id)
            if run.status == COMPLETED:
                raise DrillError(FINISHED, f"drill {run_id} is completed; `smki drill record {run_id}` shows it")
            claimed = rows_affected(session.execute(
                update(DrillRun).where(DrillRun.id == run_id,
                                       (DrillRun.status.in_((CREATED, PAUSED, FAILED)))
                                       | ((DrillRun.status == RUNNING) & (DrillRun.lease_until < now)))
                .values(status=RUNNING, lease_token=token, lease_until=now + LEASE, pause_requested=False,
                        error_code=None, error_text=None, started_at=func.coalesce(DrillRun.started_at, now))
                .execution_options(synchronize_session=False)))
            if not claimed:
                raise DrillError(BUSY, f"drill {run_id} is being run by another process; `smki drill pause "
                                 f"{run_id}` asks it to stop")
        return token

    def execute(self, run_id: int, *, on_step: Callable[[Progress], None] | None = None) -> str:
        """Run the steps not done yet, in this process, until the scenario ends, a step fails, or a pause is
        asked for; returns the run's status."""
        token = self._claim(run_id)
        with self.database.session() as session:
            run = self._run(session, run_id)
            scenario = load_scenario(self.host.settings.policies_dir, run.scenario)
            world = World(self.host, _path(run.world_dir), run.world_schema, run.seed)
            state = dict(run.context or {})
            options = dict(run.options)
        book = _Book(self, run_id, world, state)
        try:
            if not state.get("world_ready"):
                self._prepare(run_id, token, world, scenario, options, state)
            return self._steps(run_id, token, scenario, world, state, book, on_step)
        except SmkiError as error:
            self._finish(run_id, token, FAILED, error.code, error.message)
            return FAILED
        except Exception as error:   # a defect, or the database gone: recorded, so the run can be resumed
            log.exception("drill %s failed", run_id)
            self._finish(run_id, token, FAILED, "DR:RUN9", f"{type(error).__name__}: {error}")
            raise

    def _prepare(self, run_id: int, token: str, world: World, scenario: Scenario, options: Mapping[str, Any],
                 state: dict[str, Any]) -> None:
        if world.directory.exists():   # a world half-made by a crashed attempt: start it again
            shutil.rmtree(world.directory)
            if world.schema is not None:
                drop_schema(world.instance.settings.database_url, world.schema)
        self._where(run_id, token, phase="Pre-Recovery", step_id="(world)")
        made = world.build(options["devices"], options.get("types"), run_label=f"drill {run_id}")
        compromise = exposure.compromised(world, scenario)
        affected = {e.device_id: e for e in exposure.scan(world, compromise)}
        chosen = faults.choose(world.seed, list(affected), options.get("faults") or {})
        faults.inject(world, chosen)
        affected = {e.device_id: e for e in exposure.scan(world, compromise)}
        with self.database.session() as session:
            if affected:
                session.execute(insert(DrillDevice), [
                    {"run_id": run_id, "device_id": e.device_id, "device_type": e.device_type, "party": e.party,
                     "faults": e.faults, "status": "affected", "codes": {}, "reason": None, "cells_before": e.cells,
                     "cells_after": e.cells} for e in affected.values()])
            state.update(world_ready=True, compromised=compromise, estate=exposure.device_count(world),
                         faults=chosen, world=made)
            run = self._run(session, run_id)
            run.context = dict(state)
            run.devices_total = len(affected)

    def _steps(self, run_id: int, token: str, scenario: Scenario, world: World, state: dict[str, Any],
               book: _Book, on_step: Callable[[Progress], None] | None) -> str:
        stop = False
        for position, (phase, step) in enumerate(scenario.steps):
            with self.database.session() as session:
                run = self._run(session, run_id)
                row = session.get(DrillStep, (run_id, position))
                assert row is not None
                if row.status in ("done", "skipped"):
                    continue
                if run.pause_requested:
                    run.status, run.pause_requested, run.lease_token = PAUSED, False, None
                    return PAUSED
                if stop:
                    row.status, row.detail = "skipped", {"reason": "the DCC did not confirm the compromise"}
                    row.started_at = row.ended_at = now_utc()
                    continue
                done = {s for s, in session.execute(select(DrillStep.step_id).where(
                    DrillStep.run_id == run_id, DrillStep.status == "done"))}
                missing = [p for p in step.preconditions if p not in done]
                if missing:
                    raise DrillError(NOT_READY, f"step {step.id} needs {', '.join(missing)} done first")
                rerun = row.status in ("running", "failed")
                row.status, row.started_at, row.ended_at = "running", now_utc(), None
                run.phase, run.step_id, run.lease_until = phase, step.id, now_utc() + LEASE
            state["step"] = step.id
            context = Context(run_id, scenario, world, state, book, lambda: self.steps(run_id),
                              lambda done, total: self._devices(run_id, token, done, total), rerun)
            try:
                outcome = HANDLERS[step.action](context, step)
            except SmkiError as error:
                with self.database.session() as session:
                    row = session.get(DrillStep, (run_id, position))
                    assert row is not None
                    row.status, row.ended_at = "failed", now_utc()
                    row.detail = {"code": error.code, "reason": error.message}
                raise
            with self.database.session() as session:
                row = session.get(DrillStep, (run_id, position))
                assert row is not None
                row.status, row.ended_at, row.actor = "done", now_utc(), outcome.actor[:200]
                row.detail, row.artefacts = _jsonable(outcome.detail), outcome.artefacts
                self._run(session, run_id).context = _jsonable(dict(state))
            stop = stop or outcome.stop
            if on_step is not None:
                on_step(self.progress(run_id))
        self._finish(run_id, token, COMPLETED)
        return COMPLETED

    def _where(self, run_id: int, token: str, **values: Any) -> None:
        with self.database.session() as session:
            session.execute(update(DrillRun).where(DrillRun.id == run_id, DrillRun.lease_token == token)
                            .values(lease_until=now_utc() + LEASE, **values))

    def _devices(self, run_id: int, token: str, done: int, total: int) -> None:
        """A send's progress: ``done`` of ``total`` devices (0 at its start, which starts the clock of its rate)."""
        now = now_utc()
        values: dict[str, Any] = {"devices_done": done, "devices_total": total, "progress_at": now,
                                  "lease_until": now + LEASE}
        if done == 0:
            values["devices_started_at"] = now
        with self.database.session() as session:
            session.execute(update(DrillRun).where(DrillRun.id == run_id, DrillRun.lease_token == token)
                            .values(**values))

    def _finish(self, run_id: int, token: str, status: str, code: str | None = None, text: str | None = None) -> None:
        with self.database.session() as session:
            session.execute(update(DrillRun).where(DrillRun.id == run_id, DrillRun.lease_token == token)
                            .values(status=status, lease_token=None, lease_until=None, error_code=code,
                                    error_text=text, ended_at=now_utc() if status in (COMPLETED, FAILED) else None,
                                    pause_requested=False))

    def start_in_background(self, run_id: int) -> threading.Thread:
        """Execute the run in a thread of this process (the portal and the JSON API): the caller returns at once
        and reads :meth:`progress`."""
        thread = threading.Thread(target=self._background, args=(run_id,), name=f"drill-{run_id}", daemon=True)
        thread.start()
        return thread

    def _background(self, run_id: int) -> None:
        try:
            self.execute(run_id)
        except Exception:   # recorded on the run by execute; a thread has no caller to raise to
            log.exception("drill %s stopped", run_id)

    def discard_world(self, run_id: int) -> None:
        """Remove a run's world (its folder, and its PostgreSQL schema); the host's record of it stays."""
        with self.database.session() as session:
            run = self._run(session, run_id)
            directory, schema = _path(run.world_dir), run.world_schema
        if schema:
            drop_schema(World(self.host, directory, schema, 0).instance.settings.database_url, schema)
        if directory.exists():
            shutil.rmtree(directory)


class _Book:
    def __init__(self, drills: Drills, run_id: int, world: World, state: dict[str, Any]) -> None:
        self.drills, self.run_id, self.world, self.state = drills, run_id, world, state

    def affected(self) -> list[str]:
        with self.drills.database.session() as session:
            return list(session.scalars(select(DrillDevice.device_id).where(DrillDevice.run_id == self.run_id)
                                        .order_by(DrillDevice.device_id)))

    def counts(self) -> dict[str, int]:
        with self.drills.database.session() as session:
            return {str(status): int(n) for status, n in session.execute(
                select(DrillDevice.status, func.count()).where(DrillDevice.run_id == self.run_id)
                .group_by(DrillDevice.status)).all()}

    def outcomes(self, outcomes: Mapping[str, tuple[DeviceOutcome, bool]]) -> None:
        now = now_utc()
        with self.drills.database.session() as session:
            rows = session.execute(select(DrillDevice.device_id, DrillDevice.status).where(
                DrillDevice.run_id == self.run_id, DrillDevice.device_id.in_(list(outcomes)))).all()
            changes = []
            for device_id, status in rows:
                outcome, recovered = outcomes[device_id]
                change: dict[str, Any] = {"run_id": self.run_id, "device_id": device_id, "codes": dict(outcome.codes)}
                if recovered and status != "recovered":
                    change.update(status="recovered", recovered_at=now, reason=None)
                elif not recovered and outcome.status != "recovered":
                    change.update(status="failed", reason=outcome.code or outcome.status)
                changes.append(change)
            if changes:
                # executemany by primary key, per set of columns changed
                for keys in {tuple(sorted(c)) for c in changes}:
                    session.execute(update(DrillDevice), [c for c in changes if tuple(sorted(c)) == keys])

    def residual(self, residual: Mapping[str, exposure.Exposed]) -> None:
        with self.drills.database.session() as session:
            for row in session.execute(select(DrillDevice).where(DrillDevice.run_id == self.run_id)).scalars():
                found = residual.get(row.device_id)
                row.cells_after = found.cells if found else []
                if found is not None:
                    row.status = "residual"
                    row.reason = row.reason or "still holds the compromised key"
                elif row.status != "recovered":
                    row.status, row.recovered_at = "recovered", row.recovered_at or now_utc()
            known = set(session.scalars(select(DrillDevice.device_id).where(DrillDevice.run_id == self.run_id)))
            for device_id, found in residual.items():
                if device_id not in known:
                    session.add(DrillDevice(run_id=self.run_id, device_id=device_id, device_type=found.device_type,
                                            party=found.party, faults=found.faults, status="residual", codes={},
                                            reason="exposed after the drill began", cells_before=[],
                                            cells_after=found.cells))


def _path(text: str) -> Path:
    return Path(text)


def _step_dict(s: DrillStep) -> dict[str, Any]:
    return {"id": s.step_id, "position": s.position, "phase": s.phase, "title": s.title, "actor_role": s.actor_role,
            "actor": s.actor, "action": s.action, "confidence": s.confidence, "target_minutes": s.target_minutes,
            "status": s.status, "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at),
            "detail": s.detail, "artefacts": s.artefacts}


def _iso(value: dt.datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value is not None else None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
