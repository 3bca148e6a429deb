"""The ``smki`` command line contract: init, operator issuance, coded errors, exit statuses, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from sqlalchemy import select

from smki.cli import main
from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.instance import Instance
from smki.models import CsrRejection, IssuanceRecord
from tests.ca import craft


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str | None]:
    # the database lives apart from the instance folder, so both variables are seen to be honoured
    return {"SMKI_INSTANCE": str(tmp_path / "cli-instance"), "SMKI_DATABASE_URL": database_url,
            "SMKI_ENVIRONMENT": None, "SMKI_POLICIES": None, "SMKI_KEYSTORE_PASSPHRASE": None}


def instance_for(env: dict[str, str | None]) -> Instance:
    return Instance(Settings(Path(env["SMKI_INSTANCE"]), env["SMKI_DATABASE_URL"], DEFAULT_POLICIES_DIR, None))  # type: ignore[arg-type]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def initialised(runner, env) -> Instance:  # type: ignore[no-untyped-def]
    result = runner.invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    return instance_for(env)


def ledger(instance: Instance) -> list[IssuanceRecord]:
    with instance.database.session() as session:
        return list(session.scalars(select(IssuanceRecord).order_by(IssuanceRecord.id)))


def test_init_creates_the_instance_where_smki_instance_says_and_is_idempotent(runner, env, initialised):
    assert (Path(env["SMKI_INSTANCE"]) / "ca" / "root_oca.pem").exists()
    if env["SMKI_DATABASE_URL"].startswith("sqlite"):  # type: ignore[union-attr]
        assert not (Path(env["SMKI_INSTANCE"]) / "smki.core.db").exists()  # SMKI_DATABASE_URL, not the default
    assert len(ledger(initialised)) == 5

    again = runner.invoke(main, ["init"], env=env)

    assert again.exit_code == 0
    assert "already present" in again.output
    assert len(ledger(initialised)) == 5


def test_ca_issue_writes_the_certificate_and_records_channel_operator(runner, env, initialised, tmp_path):
    csr = tmp_path / "supplier.csr"
    csr.write_bytes(craft.pem(craft.organisation(craft.p256("cli"), "02", "keyAgreement")))
    out = tmp_path / "supplier.pem"

    result = runner.invoke(main, ["ca", "issue", str(csr), "--out", str(out), "--operator", "alice"], env=env)

    assert result.exit_code == 0, result.output
    certificate = x509.load_pem_x509_certificate(out.read_bytes())
    certificate.verify_directly_issued_by(initialised.hierarchy.certificate("issuing_oca"))
    row = ledger(initialised)[-1]
    assert row.serial == f"{certificate.serial_number:032X}"
    assert (row.channel, row.requested_by, row.profile) == ("operator", "alice", "organisation")
    assert row.serial in result.stderr


def test_ca_issue_without_out_prints_pem_on_stdout(runner, env, initialised, tmp_path):
    csr = tmp_path / "device.der"
    csr.write_bytes(craft.device(craft.p256("cli-d")))
    result = runner.invoke(main, ["ca", "issue", str(csr), "--kind", "device", "--operator", "bob"], env=env)
    assert result.exit_code == 0, result.output
    certificate = x509.load_pem_x509_certificate(result.stdout.encode())
    certificate.verify_directly_issued_by(initialised.hierarchy.certificate("issuing_dca"))


@pytest.mark.parametrize(("content", "kind", "code"), [
    (b"definitely not a csr", None, "FM:CSR03"),
    (b"", None, "FM:CSR01"),
    (None, "device", "CR:CSR18"),
])
def test_ca_issue_with_a_bad_csr_exits_2_with_the_code_and_no_traceback(runner, env, initialised, tmp_path,
                                                                        content, kind, code):
    csr = tmp_path / "bad.csr"
    csr.write_bytes(craft.organisation(craft.p256("cli")) if content is None else content)
    out = tmp_path / "never.pem"
    args = ["ca", "issue", str(csr), "--out", str(out), "--operator", "alice"] + (["--kind", kind] if kind else [])

    result = runner.invoke(main, args, env=env)

    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # a deliberate exit, not an escaped exception
    assert result.stderr.startswith(f"error {code}")
    assert "Traceback" not in result.output
    assert not out.exists()
    assert len(ledger(initialised)) == 5  # only the bootstrap certificates
    with initialised.database.session() as session:
        rejection = session.scalars(select(CsrRejection)).one()
    assert (rejection.code, rejection.channel, rejection.requested_by) == (code, "operator", "alice")


def test_ca_issue_before_init_is_a_coded_error(runner, env, tmp_path):
    csr = tmp_path / "ok.csr"
    csr.write_bytes(craft.organisation(craft.p256("cli")))
    result = runner.invoke(main, ["ca", "issue", str(csr), "--operator", "x"], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error CA:")
    assert "smki init" in result.stderr


def test_the_installed_smki_command_reports_a_bad_csr_on_stderr(env, initialised, tmp_path):
    csr = tmp_path / "bad.csr"
    csr.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    smki = Path(sys.executable).with_name("smki")
    command = [str(smki)] if smki.exists() else [sys.executable, "-m", "smki.cli"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SMKI_")}
    environment.update({k: v for k, v in env.items() if v is not None})

    result = subprocess.run([*command, "ca", "issue", str(csr), "--operator", "carol"], capture_output=True,
                            text=True, env=environment, timeout=120)

    assert result.returncode == 2
    assert result.stderr.startswith("error FM:CSR04")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
