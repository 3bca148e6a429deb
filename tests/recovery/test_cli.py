"""``smki custody`` and ``smki ceremony`` as an operator runs them: shares handed out as files, a PMA
decision, one sitting with passphrases typed in turn, refusals shown by their codes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smki.instance import Instance
from smki.ra.service import RegistrationAuthority
from smki.recovery.cli import register
from tests.recovery.conftest import PASSPHRASES, Custodians


@pytest.fixture
def smki() -> click.Group:
    group = click.Group("smki")
    register(group)
    return group


@pytest.fixture
def env(instance: Instance) -> dict[str, str | None]:
    return {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url,
            "SMKI_ENVIRONMENT": None, "SMKI_POLICIES": None, "SMKI_KEYSTORE_PASSPHRASE": None}


def test_custody_and_a_ceremony_from_the_command_line(smki: click.Group, env: dict[str, str | None],
                                                      ra: RegistrationAuthority, custodians: Custodians,
                                                      tmp_path: Path) -> None:
    runner = CliRunner()
    ids = [str(c.appointment_id) for c in custodians.all()]
    typed = "".join(f"{p}\n{p}\n" for p in PASSPHRASES[:5])
    result = runner.invoke(smki, ["custody", "init", "recovery", *[arg for i in ids for arg in ("--custodian", i)],
                                  "--shares-dir", str(tmp_path / "shares")], env=env, input=typed)
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "shares").glob("recovery-g1-*.share"))
    assert len(files) == 5
    status = runner.invoke(smki, ["custody", "status", "recovery"], env=env)
    assert "generation 1, 3 of 5" in status.output

    refused = runner.invoke(smki, ["ceremony", "run", "recovery", "--decision", "999", "--share", str(files[0])],
                            env=env)
    assert refused.exit_code == 2 and "RC:CER01" in refused.output

    decided = runner.invoke(smki, ["ceremony", "decide", "recovery", "--purpose", "use", "--reason", "exercise"],
                            env=env, input=f"{custodians.pma.token}\n")
    assert decided.exit_code == 0, decided.output
    decision = re.search(r"decision (\d+):", decided.output).group(1)  # type: ignore[union-attr]
    by_custodian = {f.name.split("-")[-1].split(".")[0]: f for f in files}
    shares = [by_custodian[i] for i in ids[:3]]
    # the second custodian mistypes: refused and recorded, and the sitting is one share short
    ran = runner.invoke(smki, ["ceremony", "run", "recovery", "--decision", decision,
                               *[arg for f in shares for arg in ("--share", str(f))]],
                        env=env, input=f"{PASSPHRASES[0]}\nwrong passphrase\n{PASSPHRASES[2]}\n")
    assert ran.exit_code == 2
    assert "RC:CER05" in ran.output and "RC:CER02" in ran.output

    decided = runner.invoke(smki, ["ceremony", "decide", "recovery", "--purpose", "use", "--reason", "again"],
                            env=env, input=f"{custodians.pma.token}\n")
    decision = re.search(r"decision (\d+):", decided.output).group(1)  # type: ignore[union-attr]
    ran = runner.invoke(smki, ["ceremony", "run", "recovery", "--decision", decision,
                               *[arg for f in shares for arg in ("--share", str(f))]],
                        env=env, input="".join(f"{p}\n" for p in PASSPHRASES[:3]))
    assert ran.exit_code == 0, ran.output
    assert "reconstructed and signed in memory" in ran.output
    history = runner.invoke(smki, ["ceremony", "history", "recovery"], env=env)
    assert "(failed)" in history.output and "(completed)" in history.output
