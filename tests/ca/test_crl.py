"""CRL and ARL signing: RFC 5280 v2 lists under the same crypto rules as the certificates."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from smki.ca.authority import RevokedEntry
from smki.csr import ECDSA_SHA256_DER

THIS_UPDATE = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("profile", "issuer", "hours"), [("crl", "issuing_oca", 48), ("arl", "root_oca", 720)])
def test_revocation_list_is_signed_by_its_ca_with_its_name_and_key_id(instance, profile, issuer, hours):
    ca = instance.hierarchy.certificate(issuer)
    entries = [RevokedEntry(0x1234, THIS_UPDATE - dt.timedelta(days=1), x509.ReasonFlags.key_compromise),
               RevokedEntry(0x7F00000000000000000000000000ABCD, THIS_UPDATE - dt.timedelta(hours=1))]

    crl = instance.ca.sign_crl(profile, entries, number=7, this_update=THIS_UPDATE)

    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    raw = asn1_crl.CertificateList.load(crl.public_bytes(Encoding.DER))
    tbs = raw["tbs_cert_list"]
    assert tbs["version"].native == "v2"
    assert tbs["issuer"].dump() == ca.subject.public_bytes()  # the exact DER of the CA's subject
    assert tbs["signature"].dump() == raw["signature_algorithm"].dump() == ECDSA_SHA256_DER
    assert crl.last_update_utc == THIS_UPDATE
    assert crl.next_update_utc == THIS_UPDATE + dt.timedelta(hours=hours)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert not aki.critical and aki.value.key_identifier == ski and aki.value.authority_cert_issuer is None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    revoked = {r.serial_number: r for r in crl}
    assert set(revoked) == {e.serial for e in entries}
    reason = revoked[0x1234].extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason is x509.ReasonFlags.key_compromise and not reason.critical
    assert len(revoked[0x7F00000000000000000000000000ABCD].extensions) == 0
