"""Every encoding the real SMKI accepts yields the same CSR: one DER, one SHA-256, one identity."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import select

from smki.csr import validate
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import IssuanceRecord
from tests.ca import craft

DER = craft.organisation(craft.p256("encodings"), "02", "keyAgreement", trading_name="Acme")
B64 = base64.b64encode(DER).decode()


def wrapped(width: int, newline: str, trailing: bool) -> bytes:
    lines = [B64[i:i + width] for i in range(0, len(B64), width)]
    return (newline.join(lines) + (newline if trailing else "")).encode()


ENCODINGS = {
    "der": DER,
    "pem-new-certificate-request": craft.pem(DER, "NEW CERTIFICATE REQUEST"),
    "pem-76-crlf": craft.pem(DER, width=76, newline="\r\n"),
    "pem-no-trailing-newline": craft.pem(DER, trailing=False),
    "pem-one-line-body": craft.pem(DER, width=0),
    "pem-as-str": craft.pem(DER).decode(),
    "pem-with-leading-text": b"Subject: our CSR\n\n" + craft.pem(DER),
    "base64-one-line": B64.encode(),
    "base64-one-line-trailing-newline": (B64 + "\n").encode(),
    "base64-one-line-as-str": B64,
}
for width in (64, 76):
    for name, newline in (("lf", "\n"), ("crlf", "\r\n")):
        for trailing in (True, False):
            ENCODINGS[f"base64-{width}-{name}{'-trailing' if trailing else ''}"] = wrapped(width, newline, trailing)
            ENCODINGS[f"pem-{width}-{name}{'-trailing' if trailing else ''}"] = craft.pem(
                DER, width=width, newline=newline, trailing=trailing)


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    from smki.core.config import DEFAULT_POLICIES_DIR
    from smki.core.policy import load_policies

    policies = load_policies(DEFAULT_POLICIES_DIR)
    return policies, validate(DER, policies)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_every_accepted_encoding_yields_the_same_validated_csr(reference, name):
    policies, expected = reference
    result = validate(ENCODINGS[name], policies)
    assert result.der == DER
    assert result.sha256 == expected.sha256 == hashlib.sha256(DER).hexdigest()
    assert result == expected


def test_the_ledger_records_the_same_csr_digest_for_pem_and_der(instance: Instance):
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    from_pem = service.issue_from_csr(ENCODINGS["pem-76-crlf"], channel="api", requested_by=None)
    from_der = service.issue_from_csr(DER, channel="api", requested_by=None)
    with instance.database.session() as session:
        digests = session.scalars(select(IssuanceRecord.csr_sha256)).all()
    assert digests == [hashlib.sha256(DER).hexdigest()] * 2
    assert from_pem.serial != from_der.serial
