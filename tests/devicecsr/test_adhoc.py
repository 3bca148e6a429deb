"""Ad hoc Device CSR web service: every Status and code family, in the specification's order of checks,
HTTP 200 always, and nothing issued unless SUCCESS."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from sqlalchemy import func, select

from smki.core.errors import IssuanceFailed
from smki.devicecsr.models import DeviceCsrTransaction
from smki.models import CsrRejection, IssuanceRecord
from tests.devicecsr.conftest import (
    OWNED_DEVICE,
    adhoc_xml,
    bad_signature_b64,
    csr_b64,
    headers,
    parse_answer,
    seed_certificates,
    text,
)

ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
KNOWN = "00DB000000007001"


def call(client, body: bytes, caller: str = "supplier"):  # type: ignore[no-untyped-def]
    response = client.post(ADHOC, data=body, headers=headers(caller))
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    return parse_answer(response.data)


def ledger_count(instance) -> int:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "adhoc"))


@pytest.fixture
def known(instance):  # type: ignore[no-untyped-def]
    seed_certificates(instance, KNOWN, 1)
    return KNOWN


def test_a_known_device_gets_its_replacement_certificate(client, instance, known):
    csr = csr_b64(known, "keyAgreement")

    answer = call(client, adhoc_xml(csr, "replace-1"))

    assert text(answer, "{}Status") == "SUCCESS"
    assert answer.get("ID") == "replace-1"
    assert text(answer, "{}Version") == "1.0"
    assert int(text(answer, "{}TransactionId")) > 0
    certificate = x509.load_der_x509_certificate(base64.b64decode(text(answer, "{}Certificate")))
    certificate.verify_directly_issued_by(instance.hierarchy.certificate("issuing_dca"))
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement
    assert ledger_count(instance) == 1
    with instance.database.session() as session:
        row = session.scalars(select(DeviceCsrTransaction)).one()
    assert row.status == "SUCCESS" and row.party_id == "P-IS" and row.serial is not None


@pytest.mark.parametrize(("case", "status", "code"), [
    ("unknown", "UNKNOWN_DEVICE", "UD:DEV1"),
    ("hundred", "ISSUANCE_ANOMALY", "CA:ANOM1"),
    ("owned", "INELIGIBLE", "IN:STATE1"),
    ("bad-signature", "CSR_ERROR", "CR:CSR15"),
    ("not-der", "CSR_ERROR", "CR:CSR05"),
])
def test_each_refusal_has_its_status_and_code_and_issues_nothing(client, instance, known, case, status, code):
    seed_certificates(instance, "00DB000000007002", 100)
    seed_certificates(instance, OWNED_DEVICE, 1)
    csr = {"unknown": csr_b64(0x00DB000000007999), "hundred": csr_b64("00DB000000007002"),
           "owned": csr_b64(OWNED_DEVICE), "bad-signature": bad_signature_b64(int(known, 16)),
           "not-der": base64.b64encode(b"\x30\x03\x02\x01\x00" + b"junk").decode()}[case]

    answer = call(client, adhoc_xml(csr, "r1"))

    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == (status, code)
    assert answer.get("ID") == "r1"
    assert text(answer, "{}Certificate") is None
    assert ledger_count(instance) == 0


def test_checks_run_in_the_specifications_order(client, instance):
    seed_certificates(instance, "00DB000000007003", 100)
    seed_certificates(instance, OWNED_DEVICE, 100)
    # bad signature AND unknown device: the CSR check comes first
    assert text(call(client, adhoc_xml(bad_signature_b64(0x00DB000000007777))), "{}Status") == "CSR_ERROR"
    # unknown device AND (as a network operator) not an ad hoc role: the caller check comes first
    assert text(call(client, adhoc_xml(csr_b64(0x00DB000000007777)), "network"), "{}Status") == "WORKFLOW_ERROR"
    # 100 certificates AND owned by another supplier: the threshold comes before eligibility
    assert text(call(client, adhoc_xml(csr_b64(OWNED_DEVICE))), "{}Status") == "ISSUANCE_ANOMALY"
    # schema error AND bad CSR: the schema comes first
    bad = adhoc_xml(bad_signature_b64(0x00DB000000007003)).replace(b"<Version>1.0", b"<Version>2.0")
    assert text(call(client, bad), "{}Status") == "FORMAT_ERROR"


def test_ca_failure_is_ca_error_and_issues_nothing(client, instance, known, monkeypatch):
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise IssuanceFailed("CA:E299", "the signing key is unavailable.")

    monkeypatch.setattr(instance.ca, "issue", broken)

    answer = call(client, adhoc_xml(csr_b64(known)))

    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == ("CA_ERROR", "CA:E299")
    assert ledger_count(instance) == 0


@pytest.mark.parametrize(("caller", "code"), [("nobody", "WF:AUTH2"), ("network", "WF:ROLE1"), (None, "WF:AUTH1")])
def test_callers_other_than_import_or_gas_suppliers_or_the_dcc_get_workflow_error(client, instance, known,
                                                                                  caller, code):
    hdrs = headers(caller) if caller else {"Content-Type": "application/xml"}
    response = client.post(ADHOC, data=adhoc_xml(csr_b64(known)), headers=hdrs)

    answer = parse_answer(response.data)
    assert response.status_code == 200
    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == ("WORKFLOW_ERROR", code)
    assert ledger_count(instance) == 0


def test_a_party_not_authorised_for_device_certificates_is_ineligible(instance, known, make_runtime, app_for):
    from smki.devicecsr.gate import LedgerGate, Subscriber

    runtime = make_runtime()
    runtime.gate = LedgerGate(instance.database, {"gs": Subscriber("P-G", frozenset({"GS"}), False, "gs")})
    client = app_for(runtime).test_client()

    answer = call(client, adhoc_xml(csr_b64(known)), "gs")

    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == ("INELIGIBLE", "IN:SUB1")


def test_transaction_ids_are_distinct_and_csr_errors_are_recorded_as_rejections(client, instance, known):
    first = call(client, adhoc_xml(csr_b64(known)))
    second = call(client, adhoc_xml(bad_signature_b64(int(known, 16))))

    assert int(text(first, "{}TransactionId")) != int(text(second, "{}TransactionId"))
    with instance.database.session() as session:
        rejection = session.scalars(select(CsrRejection)).one()
    assert rejection.channel == "adhoc" and rejection.code == "CR:CSR15"
