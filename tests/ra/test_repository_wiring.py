"""The RA lodges what it issues in the Repository, publishes revocations there, and provisions and
withdraws Repository credentials for AROs scoped to the Repository."""

from __future__ import annotations

import pytest

from tests.ra.conftest import SUPPLIER_A_IS, Population, auth, device_csr_pem, org_csr_pem

store = pytest.importorskip("repository.store")
access = pytest.importorskip("repository.access")
P = "/api/v1/ra"


def test_issued_certificates_are_lodged_with_the_manufacturing_flag(ra, population: Population) -> None:
    aro = ra.authenticate_token(population.aro_a.token)
    organisation = ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    device = ra.submit_device_csr(aro, device_csr_pem("00DB12000000B001"), manufacturer_id=population.manufacturer)
    repository = store.CertificateRepository(ra.database)
    lodged_org = repository.get(organisation.serial)
    lodged_device = repository.get(device.serial)
    assert organisation.lodged and lodged_org.status == "I" and not lodged_org.manufacturing_flag
    assert lodged_device.manufacturing_flag and lodged_device.device_id == "00DB12000000B001"
    assert lodged_org.lodged_by.startswith(f"person:{population.aro_a.person_id}:")


def test_rejection_on_receipt_revokes_in_the_repository(ra, population: Population) -> None:
    aro = ra.authenticate_token(population.aro_a.token)
    release = ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS))
    ra.reject_certificate(aro, release.serial, "the subject differs from the CSR")
    assert store.CertificateRepository(ra.database).get(release.serial).status == "R"


def test_repository_credentials_follow_the_aro(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    form = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
        "name": "Rae Repository", "email": "rae@alpha.example", "scopes": ["repository"],
        "acts_for": [population.supplier_a]}).get_json()
    operator = auth(population.operator)
    client.post(f"{P}/submissions/{form['id']}/verification", headers=operator,
                json={"checks": {"identity_verified": True, "screening_passed": True}})
    approved = client.post(f"{P}/submissions/{form['id']}/approval", headers=operator).get_json()
    credentials = approved["credentials"]
    repository_access = access.RepositoryAccess(ra.database)
    assert repository_access.authenticate_api_key(credentials["repository_api_key"]) is not None
    assert repository_access.authenticate_user("rae@alpha.example", credentials["repository_password"]) is not None
    appointment = approved["result"]["appointment_id"]
    client.post(f"{P}/parties/{population.supplier_a}/aros/{appointment}/withdrawal", headers=auth(population.sro_a),
                json={"reason": "left"})
    assert repository_access.authenticate_api_key(credentials["repository_api_key"]) is None
    assert repository_access.authenticate_user("rae@alpha.example", credentials["repository_password"]) is None
