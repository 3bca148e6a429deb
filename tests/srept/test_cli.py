"""``smki srept`` at the console: open a run, read its progress, write and verify the pack, refuse a pass on an
incomplete run with its code, and close the run."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from smki.instance import Instance
from smki.srept.cli import srept
from tests.ra.conftest import Population, auth, org_csr_pem
from tests.srept.conftest import NEWCOMER_IS, Newcomer


def test_a_run_from_the_console(instance: Instance, client, population: Population, newcomer: Newcomer,  # type: ignore[no-untyped-def]
                                tmp_path: Path) -> None:
    env = {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url,
           "SMKI_ENVIRONMENT": None, "SMKI_POLICIES": None, "SMKI_KEYSTORE_PASSPHRASE": None}
    runner = CliRunner()
    opened = runner.invoke(srept, ["open", str(newcomer.party)], env=env)
    assert opened.exit_code == 0, opened.output
    assert "run key (shown once" in opened.output
    assert runner.invoke(srept, ["open", str(newcomer.party)], env=env).exit_code == 2  # WF:SRP01
    assert client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                       headers=auth(newcomer.aro)).status_code == 201

    progress = runner.invoke(srept, ["progress", "1"], env=env)
    assert progress.exit_code == 0 and "ORG-01   passed" in progress.output and "1 passed" in progress.output
    pack = tmp_path / "run.zip"
    assert runner.invoke(srept, ["pack", "1", "--out", str(pack)], env=env).exit_code == 0
    assert runner.invoke(srept, ["verify", str(pack)]).exit_code == 0
    refused = runner.invoke(srept, ["pass", "1"], env=env)
    assert refused.exit_code == 2 and "WF:SRP03" in refused.output
    closed = runner.invoke(srept, ["close", "1"], env=env)
    assert closed.exit_code == 0 and "closed" in closed.output
    tokenless = runner.invoke(srept, ["selftest", "--operator-token", ""], env=env)
    assert tokenless.exit_code == 2 and "give an RA operator's API token" in tokenless.output
