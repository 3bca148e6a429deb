"""``smki custody`` and ``smki ceremony`` as an operator runs them: shares handed out as files, a PMA
decision, one sitting with passphrases typed in turn, refusals shown by their codes."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography import x509

from smki.ca.contingency import unwrap_contingency_key
from smki.core.asn1 import WRAPPED_APEX_CONTINGENCY_KEY_OID
from smki.instance import Instance
from smki.ra.service import RegistrationAuthority
from smki.recovery import carrier
from smki.recovery.ceremony import CeremonySession, record_decision
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

    # a new Recovery key at a new_key ceremony: certified in the same sitting, shares handed out for generation 2
    decided = runner.invoke(smki, ["ceremony", "decide", "recovery", "--purpose", "new_key", "--reason", "rotate"],
                            env=env, input=f"{custodians.pma.token}\n")
    decision = re.search(r"decision (\d+):", decided.output).group(1)  # type: ignore[union-attr]
    new_custodians = [arg for i in ids for arg in ("--custodian", i)]
    ran = runner.invoke(smki, ["ceremony", "run", "recovery", "--decision", decision,
                               *[arg for f in shares for arg in ("--share", str(f))], *new_custodians,
                               "--shares-dir", str(tmp_path / "new")],
                        env=env, input="".join(f"{p}\n" for p in PASSPHRASES[:3])
                        + "".join(f"{p}\n{p}\n" for p in PASSPHRASES[:5]))
    assert ran.exit_code == 0, ran.output
    assert "the new Recovery key is certified: serial" in ran.output
    assert len(list((tmp_path / "new").glob("recovery-g2-*.share"))) == 5


def test_the_hierarchy_from_the_command_line(smki: click.Group, env: dict[str, str | None], instance: Instance) -> None:
    runner = CliRunner()
    rotated = runner.invoke(smki, ["hierarchy", "rotate-issuing-oca", "--officer", "ops"], env=env)
    assert rotated.exit_code == 0, rotated.output
    old = re.search(r"\(was ([0-9A-F]+)\)", rotated.output).group(1)  # type: ignore[union-attr]
    shown = runner.invoke(smki, ["hierarchy", "show"], env=env)
    assert f"issuing_oca g1: {old} previous" in shown.output and "issuing_oca g2:" in shown.output
    revoked = runner.invoke(smki, ["hierarchy", "revoke", "issuing_oca", "--serial", old], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert "arl number 1 published with 1 entries" in revoked.output
    again = runner.invoke(smki, ["hierarchy", "revoke", "issuing_oca", "--serial", old], env=env)
    assert again.exit_code == 2 and "RP:REV2" in again.output


def test_a_new_contingency_key_and_root_from_the_command_line(smki: click.Group, env: dict[str, str | None],
                                                              ra: RegistrationAuthority, custodians: Custodians,
                                                              tmp_path: Path) -> None:
    runner = CliRunner()
    ids = [str(c.appointment_id) for c in custodians.all()]
    named = [arg for i in ids for arg in ("--custodian", i)]
    taken = runner.invoke(smki, ["custody", "init", "contingency", *named, "--shares-dir", str(tmp_path / "g1")],
                          env=env, input="".join(f"{p}\n{p}\n" for p in PASSPHRASES[:5]))
    assert taken.exit_code == 0, taken.output
    old_root = Instance(ra.instance.settings).hierarchy.certificate("root_oca")
    decided = runner.invoke(smki, ["ceremony", "decide", "contingency", "--purpose", "new_key", "--reason", "drill"],
                            env=env, input=f"{custodians.pma.token}\n")
    decision = re.search(r"decision (\d+):", decided.output).group(1)  # type: ignore[union-attr]
    shares = sorted((tmp_path / "g1").glob("*.share"))[:3]
    by_file = {f: int(f.name.split("-")[-1].split(".")[0]) for f in shares}
    passphrases = {c.appointment_id: PASSPHRASES[n] for n, c in enumerate(custodians.all())}
    ran = runner.invoke(smki, ["ceremony", "run", "contingency", "--decision", decision,
                               *[arg for f in shares for arg in ("--share", str(f))], *named,
                               "--shares-dir", str(tmp_path / "g2"), "--new-root"],
                        env=env, input="".join(f"{passphrases[by_file[f]]}\n" for f in shares)
                        + "".join(f"{p}\n{p}\n" for p in PASSPHRASES[:5]))
    assert ran.exit_code == 0, ran.output
    assert "new Root OCA" in ran.output and "carries the new Contingency key" in ran.output
    instance = Instance(ra.instance.settings)
    root = instance.hierarchy.certificate("root_oca")
    assert root != old_root and instance.hierarchy.current("root_oca").generation == 2
    # the new root carries the key now in custody: a use ceremony releases it and its wrapping key unwraps it
    session = CeremonySession.open(instance.database, instance.policies.custody, key_name="contingency",
                                   decision_id=record_decision(instance.database, ra.authenticate_token(
                                       custodians.pma.token), key_name="contingency", purpose="use",
                                       reason="check"), actor="test")
    for path in sorted((tmp_path / "g2").glob("*.share"))[:3]:
        carried = carrier.read(path)
        session.present(carried.appointment_id, passphrases[carried.appointment_id], carried.sealed)
    wrapped = root.extensions.get_extension_for_oid(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID)).value
    with session.key("test") as material:
        assert material.wrapping_key is not None
        assert unwrap_contingency_key(wrapped.value, material.wrapping_key) == \
            material.private_key.public_key()  # type: ignore[attr-defined]
