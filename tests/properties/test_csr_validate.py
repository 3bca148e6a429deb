"""Property tests of the CSR decoder and validator (smki/csr.py ``validate``): whatever arrives, the answer
is a ValidatedCsr or a CsrRejected with one of the validator's own codes, never another exception; and
every CSR built as GBCS requires validates, with the identity it was built with, in every encoding."""

from __future__ import annotations

import base64

import pytest
from asn1crypto import parser as asn1_parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from smki import csr as csr_module
from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name
from smki.core.errors import CsrRejected
from smki.core.eui64 import Eui64
from smki.core.policy import Policies
from smki.csr import ValidatedCsr, validate
from smki.csrgen import TEST_HW_TYPE, device_csr, organisation_csr
from tests.properties.conftest import KEYS, encodings, eui64s, keys, trading_names, usages, wrap

# The validator's catalogue: every rejection carries one of these, and nothing else.
CATALOGUE = frozenset(value for name, value in vars(csr_module).items()
                      if name.startswith(("FM_", "CR_")) and isinstance(value, str))
END_ENTITY_ROLES = ("01", "02", "03", "04", "05", "06", "08", "7F", "87")
SUPPLIER_ID = Eui64.parse("90B3D51F30010000")
SUPPLIER = organisation_csr(KEYS[0], "02", SUPPLIER_ID, "keyAgreement", "ACME")
DEVICE = device_csr(KEYS[1], Eui64.parse("00DB123456789001"))
REAL = (SUPPLIER.public_bytes(Encoding.DER), DEVICE.public_bytes(Encoding.DER))


def outcome(raw: bytes | str, policies: Policies, expected: str | None = None) -> ValidatedCsr | CsrRejected:
    """What the validator answers; any exception other than CsrRejected escapes and fails the test."""
    try:
        return validate(raw, policies, expected)  # type: ignore[arg-type]
    except CsrRejected as rejected:
        assert rejected.code in CATALOGUE, rejected
        assert rejected.message.strip(), rejected
        return rejected


# --- arbitrary input ----------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=600) | st.text(max_size=300))
def test_arbitrary_bytes_or_text_get_a_coded_rejection(policies, raw):
    assert isinstance(outcome(raw, policies), CsrRejected)


@settings(max_examples=150, deadline=None)
@given(label=st.sampled_from(("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "CERTIFICATE", "X509 CRL",
                              "PRIVATE KEY")) | st.text(max_size=20),
       end_label=st.none() | st.text(max_size=20),
       body=st.binary(max_size=400).map(base64.b64encode) | st.binary(max_size=200) | st.text(max_size=200).map(
           lambda t: t.encode("utf-8", "surrogatepass")),
       width=st.sampled_from((64, 76, 1000)), newline=st.sampled_from((b"\n", b"\r\n", b"")),
       as_text=st.booleans())
def test_pem_wrapped_garbage_gets_a_coded_rejection(policies, label, end_label, body, width, newline, as_text):
    begin = label.encode("utf-8", "surrogatepass")
    end = begin if end_label is None else end_label.encode("utf-8", "surrogatepass")
    raw = (b"-----BEGIN " + begin + b"-----" + newline + wrap(body, width, newline) + newline
           + b"-----END " + end + b"-----" + newline)
    answer = outcome(raw.decode("utf-8", "replace") if as_text else raw, policies)
    assert isinstance(answer, CsrRejected)


# --- mutations of real CSRs ---------------------------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Bit flips, overwritten, inserted and deleted octets, and truncation, a few at a time."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        operation = draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        if operation == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif operation == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def resigned(info: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A CertificationRequest around ``info``, signed by ``key``: a mutation that still has proof of
    possession, so the checks after the signature are reached."""
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, info + csr_module.ECDSA_SHA256_DER + _tlv(0x03, b"\x00" + signature))


def request_info(der: bytes) -> bytes:
    contents = asn1_parser.parse(der)[4]
    return contents[:asn1_parser.peek(contents)]


@settings(max_examples=250, deadline=None)
@given(data=st.data(), which=st.sampled_from((0, 1)))
def test_mutated_real_csrs_in_any_encoding_get_a_coded_answer(policies, data, which):
    der = data.draw(mutated(REAL[which]))
    raw = data.draw(encodings(der))
    answer = outcome(raw, policies)
    if isinstance(answer, ValidatedCsr):  # a mutation can land where nothing is checked (a signature bit)
        assert answer.der == der


@settings(max_examples=200, deadline=None)
@given(data=st.data(), which=st.sampled_from((0, 1)), expected=st.sampled_from((None, "organisation", "device")))
def test_mutated_and_re_signed_csrs_get_a_coded_answer(policies, data, which, expected):
    key = KEYS[0] if which == 0 else KEYS[1]
    der = resigned(data.draw(mutated(request_info(REAL[which]))), key)
    outcome(der, policies, expected)


@settings(max_examples=60, deadline=None)
@given(which=st.sampled_from((0, 1)), length_octets=st.integers(1, 4))
def test_re_encoded_lengths_are_refused_as_not_der(policies, which, length_octets):
    """BER with a long-form length where DER needs the short or minimal form: a CSR is DER only."""
    der = REAL[which]
    contents = asn1_parser.parse(der)[4]
    long_form = bytes([0x30, 0x80 | (len(_length(len(contents))) - 1 + length_octets)]) + \
        len(contents).to_bytes(len(_length(len(contents))) - 1 + length_octets, "big") + contents
    answer = outcome(long_form, policies)
    assert isinstance(answer, CsrRejected) and answer.code == csr_module.FM_NOT_PKCS10


# --- well-formed but arbitrary content ----------------------------------------------------------------

ATTRIBUTES = (NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.X500_UNIQUE_IDENTIFIER,
              NameOID.ORGANIZATION_NAME, NameOID.SERIAL_NUMBER)


@st.composite
def names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(0, 4))):
        attributes = []
        for _ in range(draw(st.integers(1, 2))):
            oid = draw(st.sampled_from(ATTRIBUTES))
            if oid == NameOID.X500_UNIQUE_IDENTIFIER and draw(st.booleans()):
                attributes.append(x509.NameAttribute(oid, draw(st.binary(max_size=12)), _ASN1Type.BitString))
            else:
                value = draw(st.text(min_size=1, max_size=70))
                attributes.append(x509.NameAttribute(oid, value, _ASN1Type.UTF8String, _validate=False))
        if len(set(attributes)) == len(attributes):
            rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


@st.composite
def general_names(draw: st.DrawFn) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(("hardwareModuleName", "raw", "dns", "other")))
        if kind == "hardwareModuleName":
            hw_type = draw(st.sampled_from((TEST_HW_TYPE, "1.2.3.4")))
            found.append(x509.OtherName(x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID),
                                        hardware_module_name(hw_type, draw(st.binary(max_size=10)))))
        elif kind == "raw":
            found.append(x509.OtherName(x509.ObjectIdentifier(HARDWARE_MODULE_NAME_OID),
                                        _tlv(0x30, draw(st.binary(max_size=30)))))
        elif kind == "dns":
            found.append(x509.DNSName("device.example"))
        else:
            found.append(x509.OtherName(x509.ObjectIdentifier("1.2.3.4"), b"\x04\x00"))
    return found


@st.composite
def arbitrary_csrs(draw: st.DrawFn) -> bytes:
    """Well-formed, properly signed CSRs with any subject, key usage flags and subjectAltName."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(draw(names()))
    if draw(st.booleans()):
        flags = {name: draw(st.booleans()) for name in (
            "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign")}
        agreement = flags["key_agreement"]
        builder = builder.add_extension(x509.KeyUsage(**flags, encipher_only=agreement and draw(st.booleans()),
                                                      decipher_only=agreement and draw(st.booleans())),
                                        critical=draw(st.booleans()))
    if draw(st.booleans()):
        builder = builder.add_extension(x509.SubjectAlternativeName(draw(general_names())), critical=True)
    key = draw(st.sampled_from(("p256", "p384")))
    signer = KEYS[2] if key == "p256" else _P384
    return builder.sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)


_P384 = ec.generate_private_key(ec.SECP384R1())


@settings(max_examples=150, deadline=None)
@given(der=arbitrary_csrs(), expected=st.sampled_from((None, "organisation", "device")))
def test_signed_csrs_with_arbitrary_content_get_a_coded_answer(policies, der, expected):
    outcome(der, policies, expected)


# --- valid CSRs validate --------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(data=st.data(), key=keys, device_id=eui64s, usage=usages)
def test_every_gbcs_device_csr_validates_in_every_encoding(policies, data, key, device_id, usage):
    der = device_csr(key, device_id, usage, policies.environment.hardware_module_type.dotted_string) \
        .public_bytes(Encoding.DER)

    validated = outcome(data.draw(encodings(der)), policies, "device")

    assert isinstance(validated, ValidatedCsr), validated
    assert (validated.kind, validated.device_id, validated.key_usage, validated.der) == (
        "device", device_id, usage, der)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), key=keys, role_ou=st.sampled_from(END_ENTITY_ROLES), entity=eui64s,
       trading_name=st.none() | trading_names())
def test_every_gbcs_organisation_csr_validates_in_every_encoding(policies, data, key, role_ou, entity,
                                                                 trading_name):
    role = policies.roles.by_ou(role_ou)
    assert role is not None
    usage = data.draw(st.sampled_from(role.usages))
    der = organisation_csr(key, role_ou, entity, usage, trading_name).public_bytes(Encoding.DER)

    validated = outcome(data.draw(encodings(der)), policies, "organisation")

    assert isinstance(validated, ValidatedCsr), validated
    assert (validated.kind, validated.role, validated.entity_identifier, validated.trading_name,
            validated.key_usage) == ("organisation", role, entity, trading_name, usage)


# --- the defects these properties found, pinned -----------------------------------------------------------

def _with_spki_oid(der: bytes, old: bytes, new: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    info = request_info(der)
    assert info.count(old) == 1
    return resigned(info.replace(old, new), key)


def test_an_unknown_curve_is_a_curve_rejection_not_a_crash(policies):
    # P-256 (1.2.840.10045.3.1.7) turned into 1.2.840.10045.3.1.6, which OpenSSL does not know
    der = _with_spki_oid(REAL[1], bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d030106"), KEYS[1])
    answer = outcome(der, policies)
    assert isinstance(answer, CsrRejected) and answer.code == csr_module.CR_CURVE


def test_an_unknown_key_algorithm_is_a_key_type_rejection_not_a_crash(policies):
    # id-ecPublicKey (1.2.840.10045.2.1) turned into 1.2.840.10045.2.3
    der = _with_spki_oid(REAL[1], bytes.fromhex("2a8648ce3d0201"), bytes.fromhex("2a8648ce3d0203"), KEYS[1])
    answer = outcome(der, policies)
    assert isinstance(answer, CsrRejected) and answer.code == csr_module.CR_KEY_TYPE


def test_a_bit_string_attribute_other_than_the_entity_identifier_is_a_subject_rejection(policies):
    # x500UniqueIdentifier (2.5.4.45) turned into 2.5.4.46, still a BIT STRING
    der = _with_spki_oid(REAL[0], bytes.fromhex("060355042d03"), bytes.fromhex("060355042e03"), KEYS[0])
    answer = outcome(der, policies)
    assert isinstance(answer, CsrRejected) and answer.code == csr_module.CR_SUBJECT


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # cryptography's, for the CN built here
def test_a_trading_name_past_64_octets_of_utf8_is_refused_at_validation(policies):
    """33 characters, 66 octets: allowed by a count of characters, it made the CA fail at signing."""
    subject = organisation_csr(KEYS[0], "02", SUPPLIER_ID).subject
    common_name = x509.NameAttribute(NameOID.COMMON_NAME, "é" * 33, _ASN1Type.UTF8String, _validate=False)
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.RelativeDistinguishedName([common_name]), *subject.rdns]))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True)
               .sign(KEYS[0], hashes.SHA256()))
    answer = outcome(request.public_bytes(Encoding.DER), policies)
    assert isinstance(answer, CsrRejected) and answer.code == csr_module.CR_SUBJECT
    assert "66 octets" in answer.message
