"""``smki estate create``, ``show`` and ``status`` as a person uses them, and the refusals they give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smki.estate.cli import estate
from smki.estate.models import EstateRun
from smki.instance import Instance
from tests.estate.conftest import Population, count


@pytest.fixture
def run_cli(instance: Instance, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url}

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(estate, list(args), env=env, catch_exceptions=False)
    return invoke


def test_create_show_status(instance: Instance, population: Population, run_cli, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    result = run_cli("create", "--devices", "20", "--types", "ESME=3,GSME=1,CHF=1", "--workers", "0",
                     "--chunk-size", "7", "--queue", queue)
    assert result.exit_code == 0, result.output
    assert "run 1: 20 devices built" in result.output

    shown = run_cli("show", "00-DB-5A-00-00-00-00-03", "--json")
    assert shown.exit_code == 0, shown.output
    device = json.loads(shown.output)
    assert device["device_type"] == "GSME" and device["supplier"] == "Volt Supply"
    assert device["network_operator"] == "Fen Gas Pipes"
    assert device["counters"] == {"recovery": 0, "supplier": 0, "networkOperator": 0, "accessControlBroker": 0,
                                  "transitionalCoS": 0}
    assert {c["state"] for c in device["cells"]} == {"installed"} and len(device["cells"]) == 9
    assert {v["repository"] for v in device["certificates"].values()} == {"in use"}
    table = run_cli("show", "00DB5A0000000004")
    assert "CHF" in table.output and "wanProvider" in table.output and "faults: none" in table.output

    status = run_cli("status", "--json")
    counted = json.loads(status.output)
    assert counted["runs"] == [{"run": 1, "status": "completed", "built": 20, "devices": 20}]
    assert counted["devices"] == {"ESME": 12, "GSME": 4, "CHF": 4}
    assert {(d["type"], d["state"], d["devices"]) for d in counted["devices_by_anchor_state"]} == {
        ("ESME", "installed", 12), ("GSME", "installed", 4), ("CHF", "installed", 4)}
    assert "devices by anchor state" in run_cli("status").output


def test_refusals_are_coded_and_store_nothing(instance: Instance, run_cli, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    # No Party holds the certificates the cells need: refused before anything is stored.
    result = run_cli("create", "--devices", "5", "--workers", "0", "--queue", queue)
    assert result.exit_code == 2 and "error ES:PLAN1" in result.output and "access_control_broker" in result.output
    assert count(instance, EstateRun) == 0
    unknown = run_cli("create", "--devices", "5", "--types", "ESME,PPMID", "--workers", "0", "--queue", queue)
    assert unknown.exit_code == 2 and "error ES:MIX1" in unknown.output and "PPMID" in unknown.output
    shown = run_cli("show", "00DB5A00000000FF")
    assert shown.exit_code == 2 and "error ES:DEV1" in shown.output
    bad = run_cli("show", "not-a-device")
    assert bad.exit_code == 2 and "error ES:DEV2" in bad.output
    assert run_cli("resume").output.startswith("error ES:RUN1")


def test_a_type_with_no_owner_is_refused(instance: Instance, population: Population, run_cli,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smki.estate import plan

    real = plan.registry.user_ids_in_roles
    monkeypatch.setattr(plan.registry, "user_ids_in_roles",
                        lambda session, roles: [] if "GT" in roles else real(session, roles))
    result = run_cli("create", "--devices", "5", "--types", "GSME", "--workers", "0",
                     "--queue", f"sqlite:///{tmp_path / 'queue.db'}")
    assert result.exit_code == 2 and "error ES:PLAN2" in result.output and "GSME" in result.output
    assert count(instance, EstateRun) == 0


def test_ctrl_c_stops_and_resume_carries_on(instance: Instance, population: Population, run_cli, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from smki.estate.jobs import EstateJobs

    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    real = EstateJobs.run_pending
    calls = {"n": 0}

    def interrupted_after_two(self, limit=1_000_000):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(self, limit)

    monkeypatch.setattr(EstateJobs, "run_pending", interrupted_after_two)
    result = run_cli("create", "--devices", "20", "--chunk-size", "5", "--workers", "0", "--queue", queue)
    assert result.exit_code == 130
    assert "interrupted: 10 of 20 devices built; `smki estate resume 1` carries on" in result.output
    monkeypatch.undo()
    resumed = run_cli("resume", "--workers", "0", "--queue", queue)
    assert resumed.exit_code == 0 and "run 1: 20 devices built" in resumed.output
    status = json.loads(run_cli("status", "--json").output)
    assert status["runs"] == [{"run": 1, "status": "completed", "built": 20, "devices": 20}]
