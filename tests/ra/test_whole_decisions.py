"""A decision takes effect whole or not at all: when any part of it is refused (the Repository among them),
nothing of it remains, the form is still open, and the same decision succeeds once the cause is fixed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select

from smki.ra import audit
from smki.ra.models import Appointment, Credential, CsrDecision, FormSubmission, Person
from tests.ra.conftest import SUPPLIER_A_IS, Population, auth, org_csr_pem

store = pytest.importorskip("repository.store")
access = pytest.importorskip("repository.access")
models = pytest.importorskip("repository.models")
P = "/api/v1/ra"
TAKEN = "kim@alpha.example"


def ok(response, status: int = 200) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def count(ra, model, *where) -> int:  # type: ignore[no-untyped-def]
    with ra.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def status_of(ra, submission_id: int) -> str:  # type: ignore[no-untyped-def]
    with ra.database.session() as session:
        submission = session.get(FormSubmission, submission_id)
        assert submission is not None
        return submission.status


def test_aro_approval_refused_by_the_repository_leaves_nothing(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    """Issue 8 item 6: the nominee's e-mail is already a Repository username."""
    repository = access.RepositoryAccess(ra.database)
    repository.create_user(TAKEN, "an-old-password-1", "party:elsewhere/person:1")
    nomination = ok(client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
        "name": "Kim Collision", "email": TAKEN, "scopes": ["organisation", "repository"],
        "acts_for": [population.supplier_a]}), 202)
    operator = auth(population.operator)
    ok(client.post(f"{P}/submissions/{nomination['id']}/verification", headers=operator,
                   json={"checks": {"identity_verified": True, "screening_passed": True}}))
    credentials_before = count(ra, Credential)

    refused = client.post(f"{P}/submissions/{nomination['id']}/approval", headers=operator)
    assert 400 <= refused.status_code < 500 and refused.get_json()["code"] == "RP:ACC3", refused.get_data(as_text=True)
    assert status_of(ra, nomination["id"]) == "verified"
    assert count(ra, Credential) == credentials_before
    assert count(ra, Appointment, Appointment.submission_id == nomination["id"]) == 0
    assert count(ra, Person, Person.name == "Kim Collision") == 0
    assert count(ra, models.RepositoryApiKey, models.RepositoryApiKey.holder.like("%person:%")) == 0
    assert audit.verify(ra.database).intact

    # the Repository's administrator removes the stale account; the same approval now succeeds whole
    with ra.database.session() as session:
        session.execute(delete(models.RepositoryUser).where(models.RepositoryUser.username == TAKEN))
    approved = ok(client.post(f"{P}/submissions/{nomination['id']}/approval", headers=operator))
    secrets = approved["credentials"]
    assert approved["status"] == "approved" and secrets["repository_username"] == TAKEN
    assert repository.authenticate_user(TAKEN, secrets["repository_password"]) is not None
    assert repository.authenticate_api_key(secrets["repository_api_key"]) is not None
    assert client.get(f"{P}/parties/{population.supplier_a}/decisions",
                      headers={"Authorization": f"Bearer {secrets['api_token']}"}).status_code == 200
    assert audit.verify(ra.database).intact


def test_revocation_approval_refused_by_the_repository_leaves_nothing(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    issued = ok(client.post(f"{P}/csr/organisation", headers=auth(population.aro_a),
                            json={"csr": org_csr_pem(SUPPLIER_A_IS)}), 201)
    request = ok(client.post(f"{P}/forms/certificate_revocation_request", headers=auth(population.aro_a),
                             json={"serial": issued["serial"], "reason": "key_compromise"}), 201)
    operator = auth(population.operator)
    ok(client.post(f"{P}/submissions/{request['id']}/verification", headers=operator,
                   json={"checks": {"requester_verified": True}}))
    # the Repository already holds a revocation the RA does not know of (recorded there directly)
    repository = store.CertificateRepository(ra.database)
    repository.revoke(issued["serial"], "keyCompromise")

    refused = client.post(f"{P}/submissions/{request['id']}/approval", headers=operator)
    assert 400 <= refused.status_code < 500 and refused.get_json()["code"].startswith("RP:"), refused.get_json()
    assert status_of(ra, request["id"]) == "verified"
    with ra.database.session() as session:
        decision = session.execute(select(CsrDecision).where(CsrDecision.serial == issued["serial"])).scalar_one()
        assert decision.status == "released"
    assert audit.verify(ra.database).intact


def test_rejection_on_receipt_refused_by_the_repository_leaves_nothing(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    issued = ok(client.post(f"{P}/csr/organisation", headers=auth(population.aro_a),
                            json={"csr": org_csr_pem(SUPPLIER_A_IS)}), 201)
    repository = store.CertificateRepository(ra.database)
    repository.revoke(issued["serial"], "keyCompromise")
    refused = client.post(f"{P}/certificates/{issued['serial']}/rejection", headers=auth(population.aro_a),
                          json={"reason": "the subject differs from the CSR"})
    assert 400 <= refused.status_code < 500 and refused.get_json()["code"].startswith("RP:"), refused.get_json()
    with ra.database.session() as session:
        decision = session.execute(select(CsrDecision).where(CsrDecision.serial == issued["serial"])).scalar_one()
        assert decision.status == "released"
    assert audit.verify(ra.database).intact


def test_a_revocation_request_for_a_rejected_certificate_is_refused_at_once(  # type: ignore[no-untyped-def]
        client, population: Population) -> None:
    issued = ok(client.post(f"{P}/csr/organisation", headers=auth(population.aro_a),
                            json={"csr": org_csr_pem(SUPPLIER_A_IS)}), 201)
    ok(client.post(f"{P}/certificates/{issued['serial']}/rejection", headers=auth(population.aro_a),
                   json={"reason": "the subject differs from the CSR"}))
    request = client.post(f"{P}/forms/certificate_revocation_request", headers=auth(population.aro_a),
                          json={"serial": issued["serial"], "reason": "key_compromise"})
    assert request.status_code == 409 and request.get_json()["code"] == "WF:FRM05", request.get_json()
