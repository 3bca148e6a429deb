"""Into the RAPP: a Party rehearses on a footing that ends with its run; an RA operator records its SREPT pass
only on the strength of a complete run; the RA's rules then open Authorised Subscriber applications and
Repository access, which stay closed before (and, for applications, during) the rehearsal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from smki.core.config import DEFAULT_POLICIES_DIR, Settings
from smki.instance import Instance
from smki.ra.models import AuditRecord, Authorisation, Organisation
from smki.schema import migrate
from tests.ra.conftest import SUPPLIER_B_IS, Population, auth, org_csr_pem
from tests.srept.conftest import NEWCOMER_IS, Newcomer, open_run, states

P = "/api/v1/ra"


@pytest.fixture
def instance(tmp_path: Path, database_url: str, template_instance_dir: Path) -> Instance:
    """A sandbox whose catalogue is the Organisation CSR scenarios alone, so a test can complete a run."""
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    for path in (policies / "srept").glob("*.yaml"):
        if path.name not in ("recording.yaml", "organisation_csr.yaml"):
            path.unlink()
    directory = tmp_path / "instance"
    shutil.copytree(template_instance_dir, directory)
    sandbox = Instance(Settings(directory, database_url, policies, None))
    migrate(sandbox.database)
    return sandbox


def _aro_nomination(client, newcomer: Newcomer, scopes: list[str]):  # type: ignore[no-untyped-def]
    return client.post(f"{P}/forms/aro_nomination", headers=auth(newcomer.sro), json={
        "organisation_id": newcomer.party, "name": "Rhea Repository", "email": "rhea@newcomer.example",
        "scopes": scopes, "acts_for": [newcomer.party]})


def _approve(client, operator, submission: int, checks: list[str]):  # type: ignore[no-untyped-def]
    verified = client.post(f"{P}/submissions/{submission}/verification", headers=auth(operator),
                           json={"checks": dict.fromkeys(checks, True)})
    assert verified.status_code == 200, verified.get_json()
    return client.post(f"{P}/submissions/{submission}/approval", headers=auth(operator), json={})


def _apply(client, newcomer: Newcomer):  # type: ignore[no-untyped-def]
    return client.post(f"{P}/forms/authorised_subscriber_application", headers=auth(newcomer.sro),
                       json={"organisation_id": newcomer.party, "policy": "organisation"})


def _play_every_scenario(client, newcomer: Newcomer, run: dict) -> None:  # type: ignore[no-untyped-def]
    aro = auth(newcomer.aro)
    issued = client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=aro)
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=aro)
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS, role_ou="03")}, headers=aro)
    client.post(f"{P}/csr/organisation", json={"csr": "no CSR here"}, headers=aro)
    client.get(f"{P}/certificates/{issued.get_json()['serial']}", headers=aro)
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                headers={"X-SREPT-Run-Key": run["run_key"]})


def test_before_a_run_nothing_is_open(client, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    refused = client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=auth(newcomer.aro))
    assert refused.get_json()["code"] == "IN:ORG03"
    repository = _aro_nomination(client, newcomer, ["organisation", "repository"])
    assert repository.status_code == 403 and repository.get_json()["code"] == "IN:AS02"
    assert repository.get_json()["field"] == "scopes"
    assert _apply(client, newcomer).get_json()["code"] == "IN:AS02"


def test_the_rehearsal_footing_opens_csrs_and_the_repository_but_not_applications(
        client, ra, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    assert client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                       headers=auth(newcomer.aro)).status_code == 201
    assert _apply(client, newcomer).get_json()["code"] == "IN:AS02"  # applications wait for a recorded pass
    nominated = _aro_nomination(client, newcomer, ["organisation", "repository"])
    assert nominated.status_code == 201, nominated.get_json()
    approved = _approve(client, population.operator, nominated.get_json()["id"], ["identity_verified",
                                                                                   "screening_passed"])
    key = approved.get_json()["credentials"]["repository_api_key"]
    assert client.get("/api/v1/repository/certificates", headers={"X-API-Key": key}).status_code == 200

    closed = client.post(f"/api/v1/srept/runs/{run['id']}/closure", headers=auth(newcomer.sro))
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    # the footing ends with the run: its grants, and the Repository access its AROs got while rehearsing
    with ra.database.session() as session:
        assert not session.execute(select(Authorisation).where(
            Authorisation.organisation_id == newcomer.party)).scalars().all()
    assert client.get("/api/v1/repository/certificates", headers={"X-API-Key": key}).status_code == 401
    assert client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                       headers=auth(newcomer.aro)).get_json()["code"] == "IN:ORG03"
    again = client.post(f"/api/v1/srept/runs/{run['id']}/closure", headers=auth(newcomer.sro))
    assert again.status_code == 409 and again.get_json()["code"] == "WF:SRP02"


def test_a_pass_needs_a_complete_run_and_then_opens_applications(client, ra, population: Population,
                                                                  newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    early = client.post(f"/api/v1/srept/runs/{run['id']}/pass", headers=auth(population.operator), json={})
    assert early.status_code == 409 and early.get_json()["code"] == "WF:SRP03"
    _play_every_scenario(client, newcomer, run)
    assert set(states(client, newcomer.sro, run["id"]).values()) == {"passed"}
    by_sro = client.post(f"/api/v1/srept/runs/{run['id']}/pass", headers=auth(newcomer.sro), json={})
    assert by_sro.status_code == 403 and by_sro.get_json()["code"] == "AZ:OPR01"

    recorded = client.post(f"/api/v1/srept/runs/{run['id']}/pass", headers=auth(population.operator), json={})
    assert recorded.status_code == 200, recorded.get_json()
    assert recorded.get_json()["status"] == "passed" and len(recorded.get_json()["pack_sha256"]) == 64
    with ra.database.session() as session:
        party = session.get(Organisation, newcomer.party)
        assert party is not None and party.srept_passed_at is not None
        audit = session.execute(select(AuditRecord).where(AuditRecord.action == "party.srept")
                                .order_by(AuditRecord.seq.desc())).scalars().first()
        assert audit is not None and f'"srept_run":{run["id"]}' in audit.detail.replace(" ", "")
    applied = _apply(client, newcomer)
    assert applied.status_code == 201, applied.get_json()
    assert _approve(client, population.operator, applied.get_json()["id"],
                    ["srept_confirmed", "vetting_complete"]).status_code == 200
    assert client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)},
                       headers=auth(newcomer.aro)).status_code == 201
