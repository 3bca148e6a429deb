"""Deviations no public vector shows, made with cryptography: each validator catches its own rule."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from smki.ca.builder import key_usage
from smki.ca.identifiers import subject_key_identifier
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name
from smki.core.config import PROJECT_ROOT
from smki.core.eui64 import Eui64
from smki.csrgen import organisation_subject
from smki.lint.findings import CATALOGUE, Finding
from smki.lint.linter import lint
from smki.lint.source import LoadedCertificate

ISSUER_KEY = ec.generate_private_key(ec.SECP256R1())
ORG_POLICY = "1.2.826.0.1.8641679.1.2.1.4"
DEVICE_POLICY = "1.2.826.0.1.1800000.1.2.1.4"
HW_TYPE = "1.2.826.0.1.8641679.1.2.2.1"
ISSUER = x509.Name([
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07", _ASN1Type.PrintableString),
    x509.NameAttribute(NameOID.COMMON_NAME, "T1", _ASN1Type.PrintableString),
])


def policies(*oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in oids])


def organisation(*, serial: int = 0x11 << 120, ski: bytes | None = None, not_after: dt.datetime | None = None,
                 subject: x509.Name | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return (x509.CertificateBuilder().serial_number(serial).issuer_name(ISSUER)
            .subject_name(subject or organisation_subject("02", Eui64.parse("90B3D51F30010000")))
            .public_key(key).not_valid_before(start).not_valid_after(not_after or start + dt.timedelta(days=3650))
            .add_extension(key_usage(["digitalSignature"]), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(ski or subject_key_identifier(key)), critical=False)
            .add_extension(policies(ORG_POLICY), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier(b"\x40" * 8, None, None), critical=False)
            .sign(ISSUER_KEY, hashes.SHA256()))


def device(*, hw_serial: bytes = b"\x00\xdb\x12\x34\x56\x78\x90\x01", policy_oids: tuple[str, ...] = (DEVICE_POLICY,),
           aki: x509.AuthorityKeyIdentifier | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    san = x509.SubjectAlternativeName([x509.OtherName(
        x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID), hardware_module_name(HW_TYPE, hw_serial))])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T357", _ASN1Type.PrintableString)])
    return (x509.CertificateBuilder().serial_number(0x22 << 120).issuer_name(issuer).subject_name(x509.Name([]))
            .public_key(key).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
            .add_extension(key_usage(["keyAgreement"]), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(subject_key_identifier(key)), critical=False)
            .add_extension(san, critical=True)
            .add_extension(policies(*policy_oids), critical=True)
            .add_extension(aki or x509.AuthorityKeyIdentifier(b"\x40" * 8, None, None), critical=False)
            .sign(ISSUER_KEY, hashes.SHA256()))


def findings(certificate: x509.Certificate, test_policies) -> set[str]:
    loaded = LoadedCertificate("synthetic.pem", 1, 1, certificate.public_bytes(Encoding.DER))
    [report] = lint([loaded], test_policies)
    return {f.code for f in report.findings}


def test_well_formed_synthetic_certificates_are_clean(test_policies):
    assert findings(organisation(), test_policies) == set()
    assert findings(device(), test_policies) == set()


@pytest.mark.parametrize(("certificate", "code"), [
    (lambda: organisation(ski=b"\x40\x01\x02\x03\x04\x05\x06\x07"), "LN:SKI02"),
    (lambda: organisation(ski=b"\x01" * 20), {"LN:SKI01", "LN:SKI02"}),
    (lambda: organisation(serial=0x11 << 112), "LN:SER01"),
    (lambda: organisation(not_after=dt.datetime(2051, 1, 1, tzinfo=dt.UTC)), "LN:VAL01"),
    (lambda: organisation(subject=x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "02")])), "LN:SUB01"),
    (lambda: organisation(subject=x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "02", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01\x02", _ASN1Type.BitString)])), "LN:UID01"),
    (lambda: organisation(subject=organisation_subject("07", Eui64.parse("90B3D51F30010000"))), "LN:ROL03"),
    (lambda: organisation(subject=organisation_subject("01", Eui64.parse("90B3D51F30010000"))), None),
    (lambda: device(hw_serial=b"\x01\x02\x03"), "LN:SAN03"),
    (lambda: device(policy_oids=(DEVICE_POLICY, ORG_POLICY)), "LN:POL02"),
    (lambda: device(aki=x509.AuthorityKeyIdentifier(b"\x40" * 8, [x509.DirectoryName(ISSUER)], 5)), "LN:AKI01"),
    (lambda: device(aki=x509.AuthorityKeyIdentifier(b"\x40" * 20, None, None)), "LN:AKI02"),
])
def test_each_rule_is_caught(test_policies, certificate, code):
    expected = code if isinstance(code, set) else ({code} if code else set())
    assert findings(certificate(), test_policies) == expected


def test_a_keyagreement_recovery_certificate_is_a_role_warning_not_an_error(test_policies):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    certificate = (x509.CertificateBuilder().serial_number(0x33 << 120).issuer_name(ISSUER)
                   .subject_name(organisation_subject("01", Eui64.parse("90B3D51F30000001")))
                   .public_key(key).not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
                   .add_extension(key_usage(["keyAgreement"]), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier(subject_key_identifier(key)), critical=False)
                   .add_extension(policies(ORG_POLICY), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier(b"\x40" * 8, None, None), critical=False)
                   .sign(ISSUER_KEY, hashes.SHA256()))
    loaded = LoadedCertificate("recovery.pem", 1, 1, certificate.public_bytes(Encoding.DER))
    [report] = lint([loaded], test_policies)
    assert [(f.code, str(f.severity)) for f in report.findings] == [("LN:ROL04", "warning")]
    assert report.errors == []


def test_a_self_signed_root_with_a_broken_signature_is_caught_without_a_chain(test_policies):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TD", _ASN1Type.PrintableString)])
    root = (x509.CertificateBuilder().serial_number(0x44 << 120).issuer_name(name).subject_name(name)
            .public_key(key.public_key()).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2049, 1, 1, tzinfo=dt.UTC))
            .add_extension(key_usage(["keyCertSign", "cRLSign"]), critical=True)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(policies(DEVICE_POLICY), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(subject_key_identifier(key.public_key())), critical=False)
            .sign(key, hashes.SHA256()))
    der = bytearray(root.public_bytes(Encoding.DER))
    der[-1] ^= 0x01  # one signature octet, as in the DCC's corrupted-signature vector
    [clean] = lint([LoadedCertificate("root.pem", 1, 1, root.public_bytes(Encoding.DER))], test_policies)
    [broken] = lint([LoadedCertificate("root.pem", 1, 1, bytes(der))], test_policies)
    assert (clean.profile, clean.findings) == ("root_dca", [])
    assert {f.code for f in broken.findings} == {"LN:SIG01"}


def test_every_catalogue_code_fits_the_sec_shape_and_is_in_the_readme():
    section = (PROJECT_ROOT / "docs" / "lint.md").read_text()
    documented = set(re.findall(r"`(LN:[A-Za-z0-9]+)`", section))
    for code in CATALOGUE:
        Finding(code, CATALOGUE[code][0], "shape check")  # raises on a badly shaped code
    input_codes = {"LN:IN01", "LN:IN02", "LN:IN03", "LN:IN04"}
    assert documented == set(CATALOGUE) | input_codes


def test_a_non_certificate_file_path_type_is_rejected(tmp_path: Path):
    from smki.lint.errors import LintInputError
    from smki.lint.source import read_certificates

    with pytest.raises(LintInputError) as caught:
        read_certificates(tmp_path)
    assert caught.value.code == "LN:IN01"
