"""A revoked or expired issuing CA never signs again; the coded refusal says which CA and why (issue 8, item 3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from smki.cli import main
from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.instance import Instance
from smki.issuance import ISSUER_NOT_VALID, ISSUER_REVOKED, IssuanceService, NotIssued
from smki.models import IssuanceRecord
from smki.publication import certificate_repository, lodge_hierarchy
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from tests.ca import craft
from tests.ra.conftest import org_csr_pem

SUPPLIER_IS = "90B3D51F30A00001"


def ledger_count(instance: Instance, profile: str) -> int:
    """Certificates of ``profile`` in the ledger, besides the hierarchy's own (the Recovery certificate)."""
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord).where(
            IssuanceRecord.profile == profile, IssuanceRecord.channel != "bootstrap")) or 0


def revoke_issuing_oca(instance: Instance) -> str:
    """Lodge the hierarchy (as the publisher does at start) and revoke the Issuing OCA, as the operator would."""
    lodge_hierarchy(instance)
    serial = f"{instance.hierarchy.certificate('issuing_oca').serial_number:X}"
    certificate_repository(instance).revoke(serial, "cACompromise", requested_by="operator:test")
    return serial


def test_smki_ca_issue_refuses_under_an_issuing_oca_on_the_arl(tmp_path: Path, database_url: str):
    env = {"SMKI_INSTANCE": str(tmp_path / "instance"), "SMKI_DATABASE_URL": database_url, "SMKI_ENVIRONMENT": None,
           "SMKI_POLICIES": None, "SMKI_KEYSTORE_PASSPHRASE": None}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    initialised = Instance(Settings(tmp_path / "instance", database_url, DEFAULT_POLICIES_DIR, None))
    issuing_oca = initialised.hierarchy.path("issuing_oca")
    assert runner.invoke(main, ["repository", "lodge", str(issuing_oca)], env=env).exit_code == 0
    serial = f"{initialised.hierarchy.certificate('issuing_oca').serial_number:X}"
    revoked = runner.invoke(main, ["revoke", serial, "--reason", "cACompromise", "--publish"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert "list: arl" in revoked.output and "published arl" in revoked.output
    organisation_csr, device_csr = tmp_path / "org.csr", tmp_path / "device.csr"
    organisation_csr.write_bytes(craft.organisation(craft.p256("revoked-oca")))
    device_csr.write_bytes(craft.device(craft.p256("revoked-oca-device")))

    refused = runner.invoke(main, ["ca", "issue", str(organisation_csr)], env=env)

    assert refused.exit_code == 2
    assert f"error {ISSUER_REVOKED}:" in refused.output
    assert "issuing_oca" in refused.output and serial in refused.output and "cACompromise" in refused.output
    assert ledger_count(initialised, "organisation") == 0
    # The Device CA is not revoked: Device Certificates are still issued.
    assert runner.invoke(main, ["ca", "issue", str(device_csr)], env=env).exit_code == 0
    assert ledger_count(initialised, "device") == 1


def test_the_ra_api_answers_a_coded_refusal_naming_the_revoked_ca(instance: Instance):
    from smki.web import create_app

    ra = RegistrationAuthority(instance)
    build = PopulationBuilder(ra)
    supplier = build.party("Alpha Energy Supply Ltd", "large_supplier", [("IS", SUPPLIER_IS)])
    aro = build.member(supplier, "Ada ARO", "aro", scopes=("organisation",))
    app = create_app(instance)
    app.config["TESTING"] = True
    app.extensions["smki_ra"] = ra
    client = app.test_client()
    serial = revoke_issuing_oca(instance)

    response = client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_IS)},
                           headers={"Authorization": f"Bearer {aro.token}"})

    assert response.status_code == 503
    problem = response.get_json()
    assert problem["code"] == ISSUER_REVOKED
    assert "issuing_oca" in problem["detail"] and serial in problem["detail"]
    assert ledger_count(instance, "organisation") == 0


def test_a_revoked_root_stops_issuance_under_the_issuing_ca_below_it(instance: Instance):
    lodge_hierarchy(instance)
    root = instance.hierarchy.certificate("root_dca")
    certificate_repository(instance).revoke(f"{root.serial_number:X}", "cACompromise", requested_by="operator:test")
    service = IssuanceService(instance.ca, instance.database, instance.policies)

    [outcome] = service.sign([service.validate(craft.device(craft.p256("root-revoked")), channel="api",
                                               requested_by=None)], channel="api", requested_by=None).outcomes

    assert isinstance(outcome, NotIssued) and outcome.code == ISSUER_REVOKED
    assert "root_dca" in outcome.message


def test_an_expired_issuer_signs_nothing(instance: Instance):
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    csr = service.validate(craft.organisation(craft.p256("expired-oca")), channel="api", requested_by=None)
    after = instance.hierarchy.certificate("issuing_oca").not_valid_after_utc + dt.timedelta(seconds=1)

    [outcome] = service.sign([csr], channel="api", requested_by=None, now=after).outcomes

    assert isinstance(outcome, NotIssued) and outcome.code == ISSUER_NOT_VALID
    assert "issuing_oca" in outcome.message and "expired" in outcome.message
    service.issue(csr, channel="api", requested_by=None)  # today it is within its validity
    assert ledger_count(instance, "organisation") == 1



def test_a_database_failure_reading_revocations_is_raised_as_sqlalchemy_raises_it(instance: Instance):
    """The status query runs on the driver's cursor; its failures must still be SQLAlchemy's errors, which
    the services answer with a coded error (CA_ERROR, CA:E501) rather than a 500."""
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    with instance.database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE repository_certificate RENAME TO repository_certificate_away"))

    with pytest.raises(SQLAlchemyError):
        service.revocations.revoked([instance.hierarchy.certificate("issuing_dca")])
