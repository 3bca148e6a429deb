"""Test key pairs of demo and drill Parties: held, used by the estate's cells, and refused for any other Party."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from repository.store import CertificateRepository
from smki.estate import views
from smki.estate.jobs import EstateJobs
from smki.estate.plan import EstateError
from smki.estate.testkeys import NO_TEST_KEY, NOT_TEST_MATERIAL, TestKeyStore
from smki.instance import Instance
from smki.ra.demo import seed_demo
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority


def test_the_demo_parties_get_test_credentials_and_an_estate(instance: Instance, jobs: EstateJobs) -> None:
    seed_demo(instance)
    store = TestKeyStore(instance)
    made = store.issue_test_credentials()
    # DCC: ACB KA, WAN provider DS, transitional CoS DS; suppliers (IS, GS) DS, KA, KA top-up; operators DS, KA
    assert len(made) == 3 + 3 * 3 + 2 * 2
    assert store.wanted() == []          # a second run makes nothing more
    assert store.issue_test_credentials() == []

    jobs.service.create_run(2, types="ESME")
    jobs.run_pending()
    view = views.show(instance, "00DB5A0000000000")
    assert view.supplier == "Northern Lights Energy plc"
    repository = CertificateRepository(instance.database)
    for cell in view.cells:
        if cell.role in ("root", "recovery"):
            continue
        # every Organisation cell holds a certificate whose private key the sandbox holds as test material
        key = store.private_key(cell.serial)
        record = repository.get(cell.serial)
        assert record is not None and record.der is not None
        certificate = x509.load_der_x509_certificate(record.der)
        public = certificate.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.public_numbers() == key.public_key().public_numbers()
    cells = {(c.role, c.key_usage, c.cell_usage): c for c in view.cells}
    assert cells[("supplier", "keyAgreement", "management")].serial != cells[
        ("supplier", "keyAgreement", "prePaymentTopUp")].serial


def test_a_real_partys_key_is_refused(instance: Instance) -> None:
    build = PopulationBuilder(RegistrationAuthority(instance), actor="test")
    real = build.party("Real Energy Ltd", "large_supplier", [("IS", None)])
    store = TestKeyStore(instance)
    with instance.database.session() as session, pytest.raises(EstateError) as refused:
        store.hold(session, real, role=2, usage="digitalSignature", cell_usage=0, eui="90B3D51F30AA0001",
                   serial="01", key=ec.generate_private_key(ec.SECP256R1()))
    assert refused.value.code == NOT_TEST_MATERIAL and "Real Energy Ltd" in refused.value.message
    assert store.wanted() == []    # a real Party is never offered test credentials
    with pytest.raises(EstateError) as missing:
        store.private_key("0A0B")
    assert missing.value.code == NO_TEST_KEY
