"""``smki drill``: run, status, list, record, pause and resume from the command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from smki.cli import main
from smki.drills.runner import Drills
from smki.instance import Instance


def _env(instance: Instance) -> dict[str, str]:
    return {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url}


def test_smki_drill(instance: Instance, drills: Drills) -> None:
    runner = CliRunner()
    env = _env(instance)
    listed = runner.invoke(main, ["drill", "scenarios"], env=env)
    assert listed.exit_code == 0 and "org_key_method3" in listed.output and "error" not in listed.output

    ran = runner.invoke(main, ["drill", "run", "acb_key", "--devices", "4", "--types", "ESME=1,CHF=1", "--seed",
                               "4", "--faults", "offline=1"], env=env)
    assert ran.exit_code == 0, ran.output
    assert "completed" in ran.output
    shown = runner.invoke(main, ["drill", "status", "1"], env=env)
    assert shown.exit_code == 0 and "post_recovery_check" not in shown.output and "check" in shown.output
    record = json.loads(runner.invoke(main, ["drill", "record", "1"], env=env).output)
    assert record["run"]["scenario"] == "acb_key" and len(record["devices"]["residual"]) == 1
    assert "acb_key" in runner.invoke(main, ["drill", "list"], env=env).output

    reported = runner.invoke(main, ["drill", "report", "1"], env=env)
    assert reported.exit_code == 0, reported.output
    assert "evidence" in reported.output and "lodged" in reported.output

    again = runner.invoke(main, ["drill", "resume", "1"], env=env)
    assert again.exit_code == 2 and "DR:RUN3" in again.output
    missing = runner.invoke(main, ["drill", "pause", "7"], env=env)
    assert missing.exit_code == 2 and "DR:RUN1" in missing.output
    bad = runner.invoke(main, ["drill", "run", "no_such_scenario"], env=env)
    assert bad.exit_code == 2 and "CA:CFG51" in bad.output
