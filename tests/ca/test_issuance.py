"""Issuance end to end: CSR in, certificate out, ledger row committed, chain verifiable."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from smki.core.errors import CsrRejected
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr, organisation_csr
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import CsrRejection, IssuanceRecord

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
DEVICE = Eui64.parse("00DB123456789001")


@pytest.fixture
def service(instance: Instance) -> IssuanceService:
    return IssuanceService(instance.ca, instance.database, instance.policies)


def test_organisation_certificate_is_recorded_and_chains_to_the_issuing_oca(instance, service):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = organisation_csr(key, "02", SUPPLIER, "keyAgreement").public_bytes(Encoding.PEM)

    issued = service.issue_from_csr(csr, channel="operator", requested_by="tester")

    certificate = issued.certificate
    certificate.verify_directly_issued_by(instance.hierarchy.certificate("issuing_oca"))
    assert certificate.public_key() == key.public_key()
    with instance.database.session() as session:
        row = session.scalars(select(IssuanceRecord).where(IssuanceRecord.serial == issued.serial)).one()
    assert row.profile == "organisation"
    assert row.subject_id == SUPPLIER.hex
    assert row.role_code == 2
    assert row.channel == "operator" and row.requested_by == "tester"
    assert x509.load_der_x509_certificate(row.certificate_der) == certificate


def test_device_certificate_chains_to_the_issuing_dca(instance, service):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = device_csr(key, DEVICE).public_bytes(Encoding.DER)

    issued = service.issue_from_csr(csr, channel="operator", expected="device")

    issued.certificate.verify_directly_issued_by(instance.hierarchy.certificate("issuing_dca"))
    assert issued.profile == "device"


def test_rejected_csr_stores_only_the_rejection(instance, service):
    with pytest.raises(CsrRejected) as caught:
        service.issue_from_csr(b"not a csr at all", channel="operator")

    assert caught.value.code == "FM:CSR03"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 0
        rejection = session.scalars(select(CsrRejection)).one()
    assert rejection.code == "FM:CSR03"
    assert rejection.channel == "operator"
