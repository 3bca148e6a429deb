"""Builds GBCS-shaped CSRs, for Parties rehearsing SREPT and for the sandbox's own tests and benchmarks."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from smki.ca.builder import key_usage
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name
from smki.core.eui64 import Eui64

TEST_HW_TYPE = "1.2.826.0.1.8641679.1.2.2.1"


def organisation_subject(role_ou: str, entity_identifier: Eui64, trading_name: str | None = None) -> x509.Name:
    rdns = []
    if trading_name:
        rdns.append(x509.RelativeDistinguishedName(
            [x509.NameAttribute(NameOID.COMMON_NAME, trading_name, _ASN1Type.UTF8String)]))
    rdns.append(x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role_ou, _ASN1Type.UTF8String)]))
    rdns.append(x509.RelativeDistinguishedName(
        [x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + entity_identifier.value,
                            _ASN1Type.BitString)]))
    return x509.Name(rdns)


def organisation_csr(
    key: ec.EllipticCurvePrivateKey, role_ou: str, entity_identifier: Eui64,
    usage: str = "digitalSignature", trading_name: str | None = None,
) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(organisation_subject(role_ou, entity_identifier, trading_name))
            .add_extension(key_usage([usage]), critical=True)
            .sign(key, hashes.SHA256()))


def device_csr(key: ec.EllipticCurvePrivateKey, device_id: Eui64, usage: str = "digitalSignature",
               hw_type: str = TEST_HW_TYPE) -> x509.CertificateSigningRequest:
    san = x509.SubjectAlternativeName([x509.OtherName(x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID),
                                                      hardware_module_name(hw_type, device_id.value))])
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(key_usage([usage]), critical=True)
            .add_extension(san, critical=True)
            .sign(key, hashes.SHA256()))
