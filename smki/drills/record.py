"""The drill record (docs/drills.md): a JSON-able account of one run, what :mod:`smki.drills.report` renders and
the JSON API returns: the run, its phases against their targets, its steps with their actors, each affected
device's outcome, the residual exposure by device type and Party, devices recovered over time, and the
artefacts kept under ``<world>/artefacts/``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from smki.core.policyfiles.recovery import PHASES, load_scenario
from smki.core.times import utc
from smki.drills.models import DrillDevice, DrillRun, DrillStep
from smki.drills.runner import UNKNOWN_RUN, DrillError, _iso, _step_dict
from smki.instance import Instance

CURVE_POINTS = 2_000


def record(host: Instance, run_id: int) -> dict[str, Any]:
    with host.database.session() as session:
        run = session.get(DrillRun, run_id)
        if run is None:
            raise DrillError(UNKNOWN_RUN, f"there is no drill run {run_id}; `smki drill list` lists them", field="run")
        steps = [_step_dict(s) for s in session.execute(select(DrillStep).where(DrillStep.run_id == run_id)
                                                        .order_by(DrillStep.position)).scalars()]
        # Only the devices the report lists are loaded whole; the recovered (all but a few, in a million-device
        # drill) are counted, and their moments read as one column for the curve.
        devices = list(session.execute(select(DrillDevice).where(
            DrillDevice.run_id == run_id, DrillDevice.status.in_(("failed", "residual")))
            .order_by(DrillDevice.device_id)).scalars())
        tracked = int(session.scalar(select(func.count()).select_from(DrillDevice)
                                     .where(DrillDevice.run_id == run_id)) or 0)
        recovered = sorted(moment for at in session.execute(
            select(DrillDevice.recovered_at).where(DrillDevice.run_id == run_id, DrillDevice.status == "recovered"))
            .scalars() if (moment := utc(at)) is not None)
        recovered_count = int(session.scalar(select(func.count()).select_from(DrillDevice).where(
            DrillDevice.run_id == run_id, DrillDevice.status == "recovered")) or 0)
        scenario = load_scenario(host.settings.policies_dir, run.scenario)
        context = dict(run.context or {})
        estate = context.get("estate", {})
        compromised = context.get("compromised", {})
        head = {"id": run.id, "scenario": run.scenario, "title": run.title, "seed": run.seed, "status": run.status,
                "started_at": _iso(run.started_at or run.created_at), "ended_at": _iso(run.ended_at),
                "started_by": run.started_by,
                "estate": {"devices": sum(estate.values()), "by_type": estate},
                "compromised": {"key": compromised.get("key", scenario.compromised.key),
                                "role": compromised.get("role"), "party": compromised.get("party"),
                                "serials": list(compromised.get("serials", []))}}
    targets: dict[str, float | None] = {phase.name: phase.target_minutes for phase in scenario.phases}
    phases = []
    for name in PHASES:
        mine = [s for s in steps if s["phase"] == name]
        started = [s["started_at"] for s in mine if s["started_at"]]
        ended = [s["ended_at"] for s in mine if s["ended_at"]]
        if not started:
            continue   # not begun (a paused or failed run)
        phases.append({"name": name, "started_at": min(started) if started else None,
                       "ended_at": max(ended) if ended and len(ended) == len(mine) else None,
                       "target_minutes": targets.get(name)})
    record_steps = [{"id": s["id"], "phase": s["phase"], "title": s["title"], "actor_role": s["actor_role"],
                     "actor": s["actor"] or s["actor_role"], "started_at": s["started_at"], "ended_at": s["ended_at"],
                     "target_minutes": s["target_minutes"],
                     "outcome": {"done": "done", "failed": "failed"}.get(s["status"], "skipped"),
                     "detail": {**s["detail"], "confidence": s["confidence"]},
                     "artefacts": [a["path"] for a in s["artefacts"]]}
                    for s in steps if s["status"] in ("done", "failed", "skipped") and s["started_at"]]
    total = sum(estate.values())
    failed = [{"device_id": d.device_id, "type": d.device_type, "party": d.party or "", "codes": d.codes,
               "reason": d.reason or ""} for d in devices if d.status in ("failed", "residual") and d.reason]
    residual: list[dict[str, Any]] = [
        {"device_id": d.device_id, "type": d.device_type, "party": d.party or "", "cells": d.cells_after}
        for d in devices if d.status == "residual"]
    by: dict[tuple[str, str], int] = {}
    for item in residual:
        by[(item["type"], item["party"])] = by.get((item["type"], item["party"]), 0) + 1
    # At most about CURVE_POINTS points, the last always kept: a point per device would make a million-device
    # record tens of megabytes for a chart that cannot show more than a few thousand.
    every = max(1, len(recovered) // CURVE_POINTS)
    curve = [{"at": head["started_at"], "recovered": 0}] + [
        {"at": moment.isoformat(), "recovered": n} for n, moment in enumerate(recovered, 1)
        if n % every == 0 or n == len(recovered)]
    artefacts: list[dict[str, str]] = []
    seen: set[str] = set()
    for s in steps:
        for artefact in s["artefacts"]:
            if artefact["path"] not in seen:
                seen.add(artefact["path"])
                artefacts.append(artefact)
    return {"run": head, "phases": phases, "steps": record_steps,
            "devices": {"total": total, "recovered": recovered_count,
                        "not_affected": total - tracked, "failed": failed, "residual": residual,
                        "residual_by_type_party": [{"type": t, "party": p, "devices": n}
                                                   for (t, p), n in sorted(by.items())]},
            "recovery_curve": curve, "artefacts": artefacts}


def artefacts_dir(host: Instance, run_id: int) -> Any:
    from pathlib import Path
    with host.database.session() as session:
        run = session.get(DrillRun, run_id)
        if run is None:
            raise DrillError(UNKNOWN_RUN, f"there is no drill run {run_id}", field="run")
        return Path(run.world_dir) / "artefacts"

