"""Every way a CSR can be wrong gets its own code, issues nothing, and leaves exactly one rejection record.

Each malformed CSR is wrong in one way only (see ``craft``), so a test failing here points at one rule.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from smki.core.config import PROJECT_ROOT
from smki.core.errors import CsrRejected
from smki.csr import received_digest
from smki.csrgen import organisation_subject
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import CsrRejection, IssuanceRecord
from tests.ca import craft

KEY = craft.p256("rejections")


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], bytes | str]
    code: str
    expected: str | None = None


def _rsa() -> bytes:
    return craft.build(rsa.generate_private_key(65537, 2048), organisation_subject("02", craft.SUPPLIER))


def _ed25519() -> bytes:
    return craft.build(ed25519.Ed25519PrivateKey.generate(), organisation_subject("02", craft.SUPPLIER),
                       algorithm=None)


def _org_subject(*attributes) -> bytes:  # type: ignore[no-untyped-def]
    return craft.build(KEY, craft.name(*attributes))


def _multi_valued() -> bytes:
    rdn = x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "02", _ASN1Type.UTF8String),
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + craft.SUPPLIER.value, _ASN1Type.BitString)])
    return craft.build(KEY, x509.Name([rdn]))


def _cn(length: int) -> Callable[[], bytes]:
    """A trading name outside RFC 5280's 1..64 characters (cryptography will not build one: re-assembled)."""
    from asn1crypto import x509 as ax

    def make() -> bytes:
        def mutate(info) -> None:  # type: ignore[no-untyped-def]
            rdns = [ax.RelativeDistinguishedName([{"type": "common_name", "value": ax.DirectoryString(
                name="utf8_string", value="A" * length)}]), *info["subject"].chosen]
            info["subject"] = ax.Name(name="", value=ax.RDNSequence(rdns))
        return craft.resign(craft.organisation(KEY), KEY, info=mutate)
    return make


def _pem_text() -> bytes:
    return craft.pem(craft.organisation(KEY))


CASES = [
    # format
    Case("empty", lambda: b"", "FM:CSR01"),
    Case("only-whitespace", lambda: " \r\n\t", "FM:CSR01"),
    Case("too-large", lambda: _pem_text() * 200, "FM:CSR02"),
    Case("not-base64", lambda: b"this is not a CSR at all!", "FM:CSR03"),
    Case("truncated-base64", lambda: base64.b64encode(craft.organisation(KEY))[:-1], "FM:CSR03"),
    Case("begin-without-end", lambda: _pem_text().split(b"-----END")[0], "FM:CSR03"),
    Case("pem-label-certificate", lambda: craft.pem(craft.organisation(KEY), "CERTIFICATE"), "FM:CSR04"),
    Case("pem-label-x509-crl", lambda: craft.pem(craft.organisation(KEY), "X509 CRL"), "FM:CSR04"),
    Case("pem-label-private-key", lambda: craft.pem(b"\x30\x03\x02\x01\x00", "PRIVATE KEY"), "FM:CSR04"),
    Case("pem-begin-end-mismatch", lambda: _pem_text().replace(b"END CERTIFICATE REQUEST",
                                                                b"END NEW CERTIFICATE REQUEST"), "FM:CSR04"),
    Case("truncated-der-in-base64", lambda: base64.b64encode(craft.organisation(KEY)[:-4]), "FM:CSR05"),
    Case("garbage-starting-0x30", lambda: b"\x30\x82\x01\x00" + bytes(range(40)), "FM:CSR05"),
    Case("der-with-trailing-bytes", lambda: craft.organisation(KEY) + b"\x00\x00", "FM:CSR05"),
    Case("base64-of-not-a-sequence", lambda: base64.b64encode(b"\x04\x03abc"), "FM:CSR05"),
    Case("malformed-utf8-in-subject", lambda: craft.resign(
        craft.organisation(KEY, trading_name="xx").replace(b"\x0c\x02xx", b"\x0c\x02\xff\xfe"), KEY), "FM:CSR05"),
    # key and signature
    Case("version-1", lambda: craft.resign(craft.organisation(KEY), KEY, info=craft.with_version(1)), "CR:CSR10"),
    Case("rsa-key", _rsa, "CR:CSR11"),
    Case("ed25519-key", _ed25519, "CR:CSR11"),
    Case("secp384r1-key", lambda: craft.organisation(ec.generate_private_key(ec.SECP384R1()),
                                                     algorithm=hashes.SHA256()), "CR:CSR12"),
    Case("compressed-point", lambda: craft.resign(craft.organisation(KEY), KEY,
                                                  info=craft.with_compressed_point(KEY)), "CR:CSR13"),
    Case("ecdsa-with-sha384", lambda: craft.organisation(KEY, algorithm=hashes.SHA384()), "CR:CSR14"),
    Case("algorithm-with-null-parameters", lambda: craft.resign(
        craft.organisation(KEY), KEY, signature_algorithm=craft.ecdsa_sha256(core.Null())), "CR:CSR14"),
    Case("signature-bit-flipped", lambda: craft.resign(craft.organisation(KEY), KEY,
                                                       signature=craft.flip_last_bit), "CR:CSR15"),
    Case("signed-by-another-key", lambda: craft.resign(craft.organisation(KEY), craft.p256("other")), "CR:CSR15"),
    # key usage
    Case("no-key-usage", lambda: craft.build(KEY, organisation_subject("02", craft.SUPPLIER), usages=None),
         "CR:CSR16"),
    Case("both-ds-and-ka", lambda: craft.build(KEY, organisation_subject("02", craft.SUPPLIER),
                                               usages=["digitalSignature", "keyAgreement"]), "CR:CSR17"),
    Case("non-repudiation", lambda: craft.build(KEY, organisation_subject("02", craft.SUPPLIER),
                                                usages=["contentCommitment"]), "CR:CSR17"),
    Case("duplicate-key-usage", lambda: craft.resign(craft.organisation(KEY), KEY, info=craft.with_extensions(
        lambda extensions: [*extensions, extensions[0]])), "CR:CSR16"),
    Case("key-cert-sign", lambda: craft.build(KEY, organisation_subject("02", craft.SUPPLIER),
                                              usages=["digitalSignature", "keyCertSign"]), "CR:CSR17"),
    # kind
    Case("device-csr-where-organisation-expected", lambda: craft.device(KEY), "CR:CSR18", "organisation"),
    Case("organisation-csr-where-device-expected", lambda: craft.organisation(KEY), "CR:CSR18", "device"),
    # organisation subject
    Case("multi-valued-rdn", _multi_valued, "CR:CSR19"),
    Case("extra-attribute-o", lambda: _org_subject((NameOID.ORGANIZATION_NAME, "Acme", _ASN1Type.UTF8String),
                                                   craft.ou("02"), craft.uid()), "CR:CSR19"),
    Case("repeated-ou", lambda: _org_subject(craft.ou("02"), craft.ou("02"), craft.uid()), "CR:CSR19"),
    Case("trading-name-65-characters", _cn(65), "CR:CSR19"),
    Case("trading-name-empty", _cn(0), "CR:CSR19"),
    Case("no-ou", lambda: _org_subject(craft.uid()), "CR:CSR20"),
    Case("ou-one-digit", lambda: _org_subject(craft.ou("2"), craft.uid()), "CR:CSR20"),
    Case("ou-lower-case-hex", lambda: _org_subject(craft.ou("7f"), craft.uid()), "CR:CSR20"),
    Case("ou-decimal-137", lambda: _org_subject(craft.ou("137"), craft.uid()), "CR:CSR20"),
    Case("ou-99-unknown", lambda: _org_subject(craft.ou("99"), craft.uid()), "CR:CSR21"),
    Case("ou-00-root", lambda: _org_subject(craft.ou("00"), craft.uid()), "CR:CSR22"),
    Case("ou-07-issuing-authority", lambda: _org_subject(craft.ou("07"), craft.uid()), "CR:CSR22"),
    Case("recovery-with-key-agreement", lambda: craft.organisation(KEY, "01", "keyAgreement"), "CR:CSR23"),
    Case("wan-provider-with-key-agreement", lambda: craft.organisation(KEY, "06", "keyAgreement"), "CR:CSR23"),
    Case("no-x500-unique-identifier", lambda: _org_subject(craft.ou("02")), "CR:CSR24"),
    Case("x500-unique-identifier-as-string", lambda: _org_subject(
        craft.ou("02"), (NameOID.X500_UNIQUE_IDENTIFIER, "90B3D51F30010000", _ASN1Type.UTF8String)), "CR:CSR24"),
    Case("x500-unique-identifier-7-octets", lambda: _org_subject(craft.ou("02"), craft.uid(bytes(7))), "CR:CSR24"),
    Case("x500-unique-identifier-unused-bits", lambda: _org_subject(
        craft.ou("02"), (NameOID.X500_UNIQUE_IDENTIFIER, b"\x01" + craft.SUPPLIER.value, _ASN1Type.BitString)),
        "CR:CSR24"),
    # device
    Case("device-san-two-names", lambda: craft.device(KEY, names=[craft.hmn(), craft.hmn()]), "CR:CSR25"),
    Case("device-san-dns-name", lambda: craft.device(KEY, names=[x509.DNSName("meter.example")]), "CR:CSR25"),
    Case("organisation-with-dns-san", lambda: craft.organisation(KEY, san=[x509.DNSName("acme.example")]),
         "CR:CSR25"),
    Case("device-san-unreadable-hmn", lambda: craft.device(KEY, names=[x509.OtherName(
        x509.ObjectIdentifier("1.3.6.1.5.5.7.8.4"), b"\x04\x01\x00")]), "CR:CSR25"),
    Case("device-san-x400-address", lambda: craft.resign(craft.device(KEY), KEY, info=craft.with_extensions(
        lambda extensions: [extensions[0], craft.extension("2.5.29.17", bytes.fromhex("3004a3023000"))])),
        "CR:CSR25"),
    Case("device-wrong-hw-type", lambda: craft.device(KEY, names=[craft.hmn(hw_type="1.2.826.0.1.8641679.1.2.2.9")]),
         "CR:CSR26"),
    Case("device-id-7-octets", lambda: craft.device(KEY, names=[craft.hmn(serial=bytes(7))]), "CR:CSR27"),
    Case("device-id-9-octets", lambda: craft.device(KEY, names=[craft.hmn(serial=bytes(9))]), "CR:CSR27"),
    Case("device-subject-not-empty", lambda: craft.device(KEY, subject=craft.name(craft.ou("02"))), "CR:CSR28"),
]


@pytest.fixture
def instance(ledger_instance: Instance) -> Instance:
    return ledger_instance


@pytest.fixture
def service(instance: Instance) -> IssuanceService:
    return IssuanceService(instance.ca, instance.database, instance.policies)


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")  # cryptography, on the CN cases
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_csr_is_rejected_with_its_code_and_only_the_rejection_is_recorded(instance, service, case):
    raw = case.make()

    with pytest.raises(CsrRejected) as caught:
        service.issue_from_csr(raw, channel="api", requested_by="party-1", expected=case.expected)

    assert caught.value.code == case.code, caught.value.message
    assert len(caught.value.message) > 20  # a sentence a person can act on
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 0
        rejection = session.scalars(select(CsrRejection)).one()
    assert rejection.code == case.code
    assert rejection.channel == "api" and rejection.requested_by == "party-1"
    assert rejection.csr_sha256 == received_digest(raw)
    assert rejection.message == caught.value.message


def test_every_code_in_the_readme_table_has_a_case():
    readme = (PROJECT_ROOT / "docs" / "ca.md").read_text(encoding="utf-8")
    section = readme.split("## CSRs", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`((?:FM|CR):CSR\d\d)`", section))
    assert len(documented) == 24
    assert documented == {case.code for case in CASES}


def test_key_usage_not_critical_in_the_csr_is_accepted_and_the_certificate_marks_it_critical(instance, service):
    raw = craft.organisation(KEY, ku_critical=False)
    issued = service.issue_from_csr(raw, channel="api", requested_by=None)
    assert issued.certificate.extensions.get_extension_for_class(x509.KeyUsage).critical is True
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(CsrRejection)) == 0


@pytest.mark.filterwarnings("error")
def test_a_trading_name_of_64_characters_is_accepted(service):
    issued = service.issue_from_csr(_cn(64)(), channel="api", requested_by=None)
    assert issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "A" * 64
