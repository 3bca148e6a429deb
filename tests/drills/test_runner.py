"""The drill runner: pause and resume, a crash part-way and a resume, repeatability from the seed, the mode 9
contingency path, progress, refusals."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from smki.ca.authority import Hierarchy
from smki.core.errors import ConfigurationError
from smki.core.policyfiles.recovery import load_scenario
from smki.drills import actions
from smki.drills.actions import Context, ceremony
from smki.drills.models import DrillRun
from smki.drills.record import record
from smki.drills.runner import BUSY, COMPLETED, FAILED, FINISHED, PAUSED, UNKNOWN_RUN, DrillError, Drills
from smki.drills.world import World, passphrase
from smki.estate.models import EstateAnchor, EstateDevice
from smki.estate.plan import EstateError
from smki.estate.sending import CommandSender
from smki.recovery.ceremony import record_decision
from tests.drills.conftest import residual_expected


def _pause_after(drills: Drills, run_id: int, step: str):  # type: ignore[no-untyped-def]
    def on_step(progress):  # type: ignore[no-untyped-def]
        if progress.step == step:
            drills.pause(run_id)
    return on_step


def test_a_paused_drill_resumes_from_its_first_unfinished_step(drills: Drills) -> None:
    run_id = drills.create("org_key_method3", seed=5)
    assert drills.execute(run_id, on_step=_pause_after(drills, run_id, "revoke")) == PAUSED
    steps = {s["id"]: s["status"] for s in drills.steps(run_id)}
    assert [k for k, v in steps.items() if v == "done"] == ["notify", "confirm", "notify_all", "decide", "revoke"]
    assert drills.progress(run_id).status == PAUSED
    before = {s["id"]: s["ended_at"] for s in drills.steps(run_id) if s["status"] == "done"}

    assert drills.execute(run_id) == COMPLETED
    after = {s["id"]: s["ended_at"] for s in drills.steps(run_id)}
    assert all(after[k] == v for k, v in before.items())       # the steps done were not done again
    data = record(drills.host, run_id)
    assert {d["device_id"] for d in data["devices"]["residual"]} == residual_expected(drills, run_id)
    with pytest.raises(DrillError) as finished:
        drills.execute(run_id)
    assert finished.value.code == FINISHED


def test_a_drill_that_crashed_mid_step_resumes_and_finishes_whole(drills: Drills,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = drills.create("org_key_method1", seed=9)
    real = actions.HANDLERS["send_commands"]
    calls = []

    def crash(context: Context, step):  # type: ignore[no-untyped-def]
        calls.append(step.id)
        real(context, step)   # the commands went out ...
        raise RuntimeError("power cut")   # ... and the process died before the step was recorded done

    monkeypatch.setitem(actions.HANDLERS, "send_commands", crash)
    with pytest.raises(RuntimeError):
        drills.execute(run_id)
    progress = drills.progress(run_id)
    assert progress.status == FAILED and progress.error and progress.error.startswith("DR:RUN9")
    monkeypatch.setitem(actions.HANDLERS, "send_commands", real)
    assert drills.execute(run_id) == COMPLETED, drills.progress(run_id).error
    data = record(drills.host, run_id)
    assert {d["device_id"] for d in data["devices"]["residual"]} == residual_expected(drills, run_id)
    assert calls == ["replace"]


def test_a_running_drill_is_not_run_twice(drills: Drills) -> None:
    run_id = drills.create("org_key_method3", seed=1)
    seen = []

    def on_step(progress):  # type: ignore[no-untyped-def]
        if not seen:
            with pytest.raises(DrillError) as busy:
                drills.execute(run_id)
            seen.append(busy.value.code)
            drills.pause(run_id)
    assert drills.execute(run_id, on_step=on_step) == PAUSED
    assert seen == [BUSY]


def test_the_same_seed_gives_the_same_drill(drills: Drills) -> None:
    first, second = (drills.create("org_key_method1", seed=42) for _ in range(2))
    for run_id in (first, second):
        assert drills.execute(run_id) == COMPLETED
    one, two = record(drills.host, first), record(drills.host, second)
    for key in ("total", "recovered", "not_affected"):
        assert one["devices"][key] == two["devices"][key]
    assert one["devices"]["residual"] == two["devices"]["residual"]
    assert [(f["device_id"], f["reason"]) for f in one["devices"]["failed"]] == \
        [(f["device_id"], f["reason"]) for f in two["devices"]["failed"]]
    with drills.database.session() as session:
        faults = [session.get(DrillRun, r).context["faults"] for r in (first, second)]  # type: ignore[union-attr]
    assert faults[0] == faults[1] and faults[0]
    assert passphrase(42, "recovery", 1, 3) == passphrase(42, "recovery", 1, 3) != passphrase(43, "recovery", 1, 3)


def test_progress_and_listing(drills: Drills) -> None:
    run_id = drills.create("acb_key", seed=3, devices=4, types="ESME=1,CHF=1", faults_text="")
    assert drills.progress(run_id).status == "created"
    assert drills.execute(run_id) == COMPLETED
    progress = drills.progress(run_id)
    assert progress.steps_done == progress.steps_total == 10
    assert progress.devices_done == progress.devices_total and progress.devices_total > 0
    assert [item["id"] for item in drills.list()] == [run_id]
    data = record(drills.host, run_id)
    assert data["devices"]["total"] == 4 and not data["devices"]["residual"]


def test_refusals(drills: Drills) -> None:
    with pytest.raises(ConfigurationError) as unknown:
        drills.create("no_such_scenario")
    assert unknown.value.code == "CA:CFG51"
    with pytest.raises(DrillError) as missing:
        drills.progress(999)
    assert missing.value.code == UNKNOWN_RUN
    with pytest.raises(Exception) as faults:
        drills.create("org_key_method3", faults_text="meteor=1")
    assert getattr(faults.value, "code", None) == "DR:FLT1"


def test_devices_accept_the_new_root_only_through_mode_9_with_the_released_symmetric_key(drills: Drills) -> None:
    run_id = drills.create("contingency_key", seed=2, faults_text="")
    assert drills.execute(run_id, on_step=_pause_after(drills, run_id, "decide")) == PAUSED
    with drills.database.session() as session:
        run = session.get(DrillRun, run_id)
        assert run is not None
        world = World(drills.host, Path(run.world_dir), run.world_schema, run.seed)
        state = dict(run.context)
    instance = world.instance
    old_root = instance.hierarchy.certificate("root_oca").public_bytes(Encoding.DER)
    pma = world.principal(world.population.pma_token)
    scenario = load_scenario(instance.settings.policies_dir, "contingency_key")
    context = Context(run_id, scenario, world, state, None, list, lambda d, t: None)  # type: ignore[arg-type]
    devices = _device_ids(instance)

    # the Recovery key cannot place a root at all
    with pytest.raises(EstateError) as by_recovery:
        CommandSender(instance).send("recovery", ["recovery"], devices, placements={"root": old_root})
    assert by_recovery.value.code == "ES:SND5"
    # the Contingency key released at a ceremony, but not the symmetric key that unwraps it: every device refuses
    record_decision(instance.database, pma, key_name="contingency", purpose="use", reason="test")
    detail: dict = {}
    with ceremony(context, "contingency", "use", detail) as session, session.key("test") as material:
        report = CommandSender(instance).send("contingency", ["recovery"], devices, signer=material.private_key,
                                              symmetric_key=secrets.token_bytes(32), placements={"root": old_root},
                                              collect_outcomes=True)
    assert {o.status for o in report.outcomes.values()} == {"refused"}
    assert {o.code for o in report.outcomes.values()} == {"ES:PRC3"}
    assert _roots(instance) == {old_root}

    # the drill's own step: the ceremony releases both, the devices take the new root
    assert drills.execute(run_id) == COMPLETED
    new_root = Hierarchy(instance.settings.ca_dir).certificate("root_oca").public_bytes(Encoding.DER)
    assert new_root != old_root and _roots(instance) == {new_root}
    data = record(drills.host, run_id)
    assert not data["devices"]["residual"]
    step = next(s for s in data["steps"] if s["id"] == "new_material")
    assert [c["purpose"] for c in step["detail"]["ceremonies"]] == ["use", "new_key"]
    assert step["detail"]["new_custody"]["generation"] == 2


def _device_ids(instance) -> list[str]:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        return list(session.scalars(select(EstateDevice.device_id)))


def _roots(instance) -> set[bytes]:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        anchors = {a.id: a.der for a in session.execute(select(EstateAnchor.id, EstateAnchor.der))}
        return {anchors[cell[3]] for (cells,) in session.execute(select(EstateDevice.cells))
                for cell in json.loads(cells) if cell[0] == 0}
