"""Certificate Signing Request decoding and validation, before any eligibility decision.

Accepts every encoding the real SMKI service accepts: PEM under either header, bare base64 on one line
or wrapped (64 or 76 columns, LF or CRLF), or DER. Then checks, in order: PKCS#10 structure, P-256 with
an uncompressed point, ecdsa-with-SHA256 without parameters, the signature (proof of possession), the
requested key usage, and the subject (Organisation) or hardwareModuleName (Device).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Literal, cast

from asn1crypto import parser as asn1_parser
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, hardware_module_name, parse_hardware_module_name
from smki.core.errors import CsrRejected
from smki.core.eui64 import Eui64
from smki.core.policy import Policies, RemotePartyRole

CsrKind = Literal["organisation", "device"]

# The DER of AlgorithmIdentifier { ecdsa-with-SHA256 } with parameters absent, as RFC 5758 requires.
ECDSA_SHA256_DER = bytes.fromhex("300a06082a8648ce3d040302")
# The DER of the OID id-ecPublicKey (1.2.840.10045.2.1).
ID_EC_PUBLIC_KEY_DER = bytes.fromhex("06072a8648ce3d0201")
# SubjectPublicKeyInfo of a key on the named curve P-256, up to its point: SEQUENCE { AlgorithmIdentifier
# { id-ecPublicKey, prime256v1 }, BIT STRING of 66 octets (no unused bits, then the 65-octet point) }.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
P256_SPKI_LENGTH = len(P256_SPKI_PREFIX) + 65
# Labels may hold digits (X509 CRL, PKCS7): any label is matched, so a wrong one gets FM:CSR04, not FM:CSR03.
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", re.S)
_BASE64_BODY = re.compile(rb"^[A-Za-z0-9+/=\r\n]+$")
_OU = re.compile(r"^[0-9A-F]{2}$")

# The catalogue of rejections: code -> what a person should do about it.
FM_EMPTY = "FM:CSR01"
FM_TOO_LARGE = "FM:CSR02"
FM_NOT_ENCODED = "FM:CSR03"
FM_PEM_LABEL = "FM:CSR04"
FM_NOT_PKCS10 = "FM:CSR05"
CR_VERSION = "CR:CSR10"
CR_KEY_TYPE = "CR:CSR11"
CR_CURVE = "CR:CSR12"
CR_POINT = "CR:CSR13"
CR_SIG_ALG = "CR:CSR14"
CR_SIGNATURE = "CR:CSR15"
CR_NO_KEY_USAGE = "CR:CSR16"
CR_KEY_USAGE = "CR:CSR17"
CR_KIND = "CR:CSR18"
CR_SUBJECT = "CR:CSR19"
CR_ROLE_FORMAT = "CR:CSR20"
CR_ROLE_UNKNOWN = "CR:CSR21"
CR_ROLE_CA = "CR:CSR22"
CR_ROLE_USAGE = "CR:CSR23"
CR_ENTITY_ID = "CR:CSR24"
CR_SAN = "CR:CSR25"
CR_HW_TYPE = "CR:CSR26"
CR_DEVICE_ID = "CR:CSR27"
CR_DEVICE_SUBJECT = "CR:CSR28"


@dataclass(frozen=True)
class ValidatedCsr:
    der: bytes
    sha256: str                       # of the DER, so one CSR in any encoding has one identity
    kind: CsrKind
    public_key: ec.EllipticCurvePublicKey
    key_usage: str                    # digitalSignature or keyAgreement
    role: RemotePartyRole | None = None
    entity_identifier: Eui64 | None = None
    trading_name: str | None = None
    device_id: Eui64 | None = None


def received_digest(raw: bytes | str) -> str:
    """SHA-256 of the bytes exactly as received: how a rejection is recorded when nothing decodes."""
    return hashlib.sha256(raw.encode("utf-8", "replace") if isinstance(raw, str) else raw).hexdigest()


def decode(raw: bytes | str, policies: Policies) -> bytes:
    """The DER inside any accepted encoding."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
    limit = policies.csr.max_size_bytes
    if len(data) > limit:
        raise CsrRejected(FM_TOO_LARGE, f"the CSR is {len(data)} bytes; at most {limit} are accepted. "
                          "Send one PKCS#10 request, not a bundle or a certificate chain.")
    if not data.strip():
        raise CsrRejected(FM_EMPTY, "the CSR is empty. Send a PKCS#10 request as PEM, base64 or DER.")
    if data[0] == 0x30:  # a DER SEQUENCE: binary, not text
        return data
    match = _PEM.search(data)
    if match:
        begin, body, end = match.group(1).decode(), match.group(2), match.group(3).decode()
        if begin != end or begin not in policies.csr.pem_labels:
            labels = " or ".join(f"'-----BEGIN {label}-----'" for label in policies.csr.pem_labels)
            raise CsrRejected(FM_PEM_LABEL, f"the PEM armour says '{begin}'"
                              f"{'' if begin == end else f' but ends with {end!r}'}; a CSR is armoured "
                              f"with {labels}.")
    elif b"-----" in data:
        raise CsrRejected(FM_NOT_ENCODED, "the PEM armour is incomplete: both the BEGIN and the END line "
                          "are needed.")
    else:
        body = data
    body = body.strip()
    if not _BASE64_BODY.match(body):
        raise CsrRejected(FM_NOT_ENCODED, "the CSR is neither DER nor base64: it contains characters "
                          "other than base64 and line breaks.")
    try:
        der = base64.b64decode(body.replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CsrRejected(FM_NOT_ENCODED, f"the base64 does not decode ({exc}); check the CSR was "
                          "copied whole.") from exc
    if not der or der[0] != 0x30:
        raise CsrRejected(FM_NOT_PKCS10, "the decoded bytes are not a PKCS#10 request (no DER SEQUENCE).")
    return der


_SIGNATURE_MESSAGE = ("the CSR signature does not verify with its own public key (no proof of possession); sign "
                      "the CSR with the private key of the key pair.")
_SIG_ALG_MESSAGE = ("the CSR must be signed with ecdsa-with-SHA256 and an AlgorithmIdentifier without "
                    "parameters (not even NULL).")
# RFC 5280 ub-common-name: a longer or empty CN could not be put into the certificate.
_CN_LENGTH = range(1, 65)


@dataclass(frozen=True)
class _RawParts:
    """The raw DER pieces that cryptography normalises away, located with asn1crypto's TLV parser."""

    version: bytes              # the version INTEGER, whole
    spki: bytes                 # the SubjectPublicKeyInfo, whole, exactly as received
    signature_algorithm: bytes  # the outer AlgorithmIdentifier, whole


def _children(contents: bytes, count: int) -> list[bytes]:
    out, rest = [], contents
    for _ in range(count):
        length = asn1_parser.peek(rest)
        out.append(rest[:length])
        rest = rest[length:]
    return out


def _parse(der: bytes) -> tuple[x509.CertificateSigningRequest, _RawParts]:
    try:
        # CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature }
        info, algorithm = _children(asn1_parser.parse(der, strict=True)[4], 2)
        # CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, [0] attributes }
        version, _subject, spki = _children(asn1_parser.parse(info)[4], 3)
    except ValueError as exc:
        raise CsrRejected(FM_NOT_PKCS10, f"the request is not a well-formed PKCS#10 CSR ({exc}).") from exc
    # cryptography refuses these two outright (InvalidVersion; a parse error for ECDSA with parameters),
    # so they are told apart here to give them their own codes rather than a 500 or a generic FM:CSR05.
    if version != b"\x02\x01\x00":
        raise CsrRejected(CR_VERSION, "the CSR version must be 0 (PKCS#10 v1).")
    try:
        request = x509.load_der_x509_csr(der)
        request.subject  # noqa: B018 - parsed lazily; a malformed string in it is a format error
    except ValueError as exc:
        if algorithm != ECDSA_SHA256_DER:
            raise CsrRejected(CR_SIG_ALG, _SIG_ALG_MESSAGE) from exc
        raise CsrRejected(FM_NOT_PKCS10, f"the request is not a well-formed PKCS#10 CSR ({exc}).") from exc
    except TypeError as exc:  # cryptography allows a BIT STRING only as x500UniqueIdentifier
        raise CsrRejected(CR_SUBJECT, f"the subject cannot be read ({exc}); in a CSR subject only the "
                          "x500UniqueIdentifier is a BIT STRING.") from exc
    return request, _RawParts(version, spki, algorithm)


def _is_ec_key(spki: bytes) -> bool:
    """Whether SubjectPublicKeyInfo names id-ecPublicKey, read from its TLVs (parameters are not looked at)."""
    try:
        [algorithm] = _children(asn1_parser.parse(spki)[4], 1)
        [oid] = _children(asn1_parser.parse(algorithm)[4], 1)
    except ValueError:
        return False
    return oid == ID_EC_PUBLIC_KEY_DER


def _p256_key_and_signature(request: x509.CertificateSigningRequest, raw: _RawParts) -> ec.EllipticCurvePublicKey:
    """The key of a CSR whose SubjectPublicKeyInfo is, byte for byte, an uncompressed P-256 point (what GBCS
    requires, and every CSR the services are sent): loaded once from the point, its signature checked with it."""
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw.spki[len(P256_SPKI_PREFIX):])
    except ValueError as exc:
        raise CsrRejected(CR_KEY_TYPE, f"the public key cannot be read ({exc}); generate an EC key on "
                          "NIST P-256.") from exc
    if raw.signature_algorithm != ECDSA_SHA256_DER:
        raise CsrRejected(CR_SIG_ALG, _SIG_ALG_MESSAGE)
    try:
        public_key.verify(request.signature, request.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise CsrRejected(CR_SIGNATURE, _SIGNATURE_MESSAGE) from exc
    return public_key


def _key_and_signature(request: x509.CertificateSigningRequest, raw: _RawParts,
                       policies: Policies) -> ec.EllipticCurvePublicKey:
    if raw.version != b"\x02\x01\x00":
        raise CsrRejected(CR_VERSION, "the CSR version must be 0 (PKCS#10 v1).")
    if policies.csr.curve == "secp256r1" and len(raw.spki) == P256_SPKI_LENGTH \
            and raw.spki.startswith(P256_SPKI_PREFIX + b"\x04"):
        return _p256_key_and_signature(request, raw)
    # Anything else is refused below, each way with its own code.
    try:
        public_key = request.public_key()
    except (ValueError, TypeError) as exc:
        raise CsrRejected(CR_KEY_TYPE, f"the public key cannot be read ({exc}); generate an EC key on "
                          "NIST P-256.") from exc
    except UnsupportedAlgorithm as exc:  # an algorithm or a curve OpenSSL does not know at all
        if _is_ec_key(raw.spki):
            raise CsrRejected(CR_CURVE, f"the key's curve is not supported ({exc}); GBCS allows only NIST "
                              "P-256 (secp256r1, prime256v1).") from exc
        raise CsrRejected(CR_KEY_TYPE, f"the public key's algorithm is not supported ({exc}); GBCS allows "
                          "only EC keys on NIST P-256.") from exc
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise CsrRejected(CR_KEY_TYPE, "the public key is not an elliptic-curve key; GBCS allows only "
                          "EC keys on NIST P-256.")
    if public_key.curve.name != policies.csr.curve:
        raise CsrRejected(CR_CURVE, f"the key is on {public_key.curve.name}; GBCS allows only NIST P-256 "
                          "(secp256r1, prime256v1).")
    # The key as received must be byte-for-byte the canonical uncompressed, named-curve encoding;
    # cryptography re-encodes uncompressed, so any difference is a compressed point (or explicit
    # curve parameters, which GBCS forbids as well).
    canonical = public_key.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    if raw.spki != canonical:
        raise CsrRejected(CR_POINT, "the public key is not encoded as GBCS requires: an uncompressed point "
                          "(65 octets starting 04) on the named curve P-256.")
    if raw.signature_algorithm != ECDSA_SHA256_DER:
        raise CsrRejected(CR_SIG_ALG, _SIG_ALG_MESSAGE)
    if not request.is_signature_valid:
        raise CsrRejected(CR_SIGNATURE, _SIGNATURE_MESSAGE)
    return public_key


def _only(flag: str) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=flag == "digitalSignature", content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=flag == "keyAgreement",
                         key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)


# The two keyUsage values a CSR may request, found by value (KeyUsage hashes and compares all nine flags):
# reading the nine flags one by one costs several times that, for every CSR.
_ONE_USAGE = {_only("digitalSignature"): "digitalSignature", _only("keyAgreement"): "keyAgreement"}


def _key_usage(request: x509.CertificateSigningRequest) -> str:
    try:
        # by OID: by class would test every extension against an abstract class, for every CSR
        usage = cast(x509.KeyUsage, request.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value)
    except x509.ExtensionNotFound as exc:
        raise CsrRejected(CR_NO_KEY_USAGE, "the CSR requests no keyUsage; request exactly one of "
                          "digitalSignature or keyAgreement in its extensionRequest.") from exc
    except x509.UnsupportedGeneralNameType as exc:  # extensions are parsed together, SAN included
        raise CsrRejected(CR_SAN, f"the subjectAltName cannot be read ({exc}); a Device CSR's "
                          "subjectAltName holds exactly one hardwareModuleName.") from exc
    except (ValueError, x509.DuplicateExtension) as exc:
        raise CsrRejected(CR_NO_KEY_USAGE, f"the CSR's extensionRequest cannot be read ({exc}).") from exc
    exact = _ONE_USAGE.get(usage)
    if exact is not None:
        return exact
    flags = {
        "digitalSignature": usage.digital_signature, "contentCommitment": usage.content_commitment,
        "keyEncipherment": usage.key_encipherment, "dataEncipherment": usage.data_encipherment,
        "keyAgreement": usage.key_agreement, "keyCertSign": usage.key_cert_sign, "cRLSign": usage.crl_sign,
        "encipherOnly": usage.key_agreement and usage.encipher_only,
        "decipherOnly": usage.key_agreement and usage.decipher_only,
    }
    requested = [name for name, on in flags.items() if on]
    if requested not in (["digitalSignature"], ["keyAgreement"]):
        raise CsrRejected(CR_KEY_USAGE, f"the CSR requests keyUsage {', '.join(requested) or 'none'}; "
                          "request exactly one of digitalSignature or keyAgreement (use two key pairs "
                          "for both).")
    return requested[0]


def _san(request: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return cast(x509.SubjectAlternativeName,
                    request.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value)
    except x509.ExtensionNotFound:
        return None


def _organisation(request: x509.CertificateSigningRequest, usage: str, policies: Policies) -> dict:
    found: dict[str, x509.NameAttribute] = {}
    for rdn in request.subject.rdns:
        attributes = list(rdn)
        if len(attributes) != 1:
            raise CsrRejected(CR_SUBJECT, "every RDN of an Organisation CSR subject must hold one "
                              "attribute (no multi-valued RDNs).")
        attribute = attributes[0]
        name = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
                NameOID.X500_UNIQUE_IDENTIFIER: "x500UniqueIdentifier"}.get(attribute.oid)
        if name is None:
            raise CsrRejected(CR_SUBJECT, f"the subject carries {attribute.oid.dotted_string}, which an "
                              "Organisation Certificate has no place for; use only CN (optional), OU "
                              "and x500UniqueIdentifier.")
        if name in found:
            raise CsrRejected(CR_SUBJECT, f"the subject carries {name} twice; give it once.")
        found[name] = attribute
    if "OU" not in found:
        raise CsrRejected(CR_ROLE_FORMAT, "the subject has no OU; put the Remote Party Role there as two "
                          "upper-case hex digits, for example 02 for supplier.")
    ou = str(found["OU"].value)
    if not _OU.match(ou):
        raise CsrRejected(CR_ROLE_FORMAT, f"the subject OU is {ou!r}; the Remote Party Role must be two "
                          "upper-case hex digits, for example 02 for supplier or 7F for other.")
    role = policies.roles.by_ou(ou)
    if role is None:
        raise CsrRejected(CR_ROLE_UNKNOWN, f"OU {ou} is not a Remote Party Role this SMKI certifies.")
    if role.ca:
        raise CsrRejected(CR_ROLE_CA, f"OU {ou} is the {role.name} role, held only by the SMKI's own CAs; "
                          "a Subscriber cannot request it.")
    if usage not in role.usages:
        raise CsrRejected(CR_ROLE_USAGE, f"the {role.name} role is certified only for "
                          f"{' or '.join(role.usages)}, not {usage}.")
    unique = found.get("x500UniqueIdentifier")
    if unique is None:
        raise CsrRejected(CR_ENTITY_ID, "the subject has no x500UniqueIdentifier; put the Entity "
                          "Identifier (EUI-64 User ID) there as a 64-bit BIT STRING.")
    value = unique.value
    if unique._type is not _ASN1Type.BitString or not isinstance(value, bytes) or len(value) != 9 \
            or value[0] != 0:
        raise CsrRejected(CR_ENTITY_ID, "the x500UniqueIdentifier must be a BIT STRING of exactly 64 "
                          "bits holding the Entity Identifier (EUI-64).")
    trading_name = str(found["CN"].value) if "CN" in found else None
    # Counted in UTF-8 octets, as the certificate builder (cryptography) counts them: 64 characters outside
    # ASCII would pass a count of characters and then fail at signing.
    if trading_name is not None and len(trading_name.encode("utf-8")) not in _CN_LENGTH:
        raise CsrRejected(CR_SUBJECT, f"the subject CN (trading name) is {len(trading_name.encode('utf-8'))} "
                          "octets in UTF-8; give 1 to 64 (fewer characters outside ASCII), or leave CN out.")
    return {"role": role, "entity_identifier": Eui64(value[1:]), "trading_name": trading_name}


@cache
def _hardware_module_name_prefix(hw_type: str) -> bytes:
    """The DER of a HardwareModuleName of ``hw_type`` up to its 8-octet hwSerialNum (the same for every device)."""
    return hardware_module_name(hw_type, bytes(8))[:-8]


def _device(request: x509.CertificateSigningRequest, san: x509.SubjectAlternativeName,
            policies: Policies) -> dict:
    if len(request.subject.rdns) != 0:
        raise CsrRejected(CR_DEVICE_SUBJECT, "a Device CSR must have an empty subject; the Device ID "
                          "belongs in the hardwareModuleName subjectAltName.")
    names = list(san)
    if len(names) != 1 or not isinstance(names[0], x509.OtherName) \
            or names[0].type_id.dotted_string != HARDWARE_MODULE_NAME_OID:
        raise CsrRejected(CR_SAN, "the subjectAltName must hold exactly one otherName of type "
                          "hardwareModuleName (1.3.6.1.5.5.7.8.4).")
    expected = policies.environment.hardware_module_type.dotted_string
    value = names[0].value
    prefix = _hardware_module_name_prefix(expected)
    if len(value) == len(prefix) + 8 and value.startswith(prefix):
        # Byte for byte the DER of a HardwareModuleName of this environment's hwType with an 8-octet serial
        # (as every Device CSR is): the Device ID is its last 8 octets. Anything else is parsed, for the
        # precise refusal.
        return {"device_id": Eui64(value[-8:])}
    try:
        hw_type, serial = parse_hardware_module_name(value)
    except ValueError as exc:
        raise CsrRejected(CR_SAN, f"the hardwareModuleName cannot be read ({exc}).") from exc
    if hw_type != expected:
        raise CsrRejected(CR_HW_TYPE, f"the hardwareModuleName hwType is {hw_type}; this environment "
                          f"uses {expected}.")
    if len(serial) != 8:
        raise CsrRejected(CR_DEVICE_ID, f"the hwSerialNum is {len(serial)} octets; the Device ID is an "
                          "EUI-64 of exactly 8 octets.")
    return {"device_id": Eui64(serial)}


def validate(raw: bytes | str, policies: Policies, expected: CsrKind | None = None) -> ValidatedCsr:
    """Decode and check a CSR. Raises :class:`CsrRejected` with the first failing rule's code."""
    der = decode(raw, policies)
    request, raw_parts = _parse(der)
    public_key = _key_and_signature(request, raw_parts, policies)
    usage = _key_usage(request)
    try:
        san = _san(request)
    except ValueError as exc:
        raise CsrRejected(CR_SAN, f"the subjectAltName cannot be read ({exc}).") from exc
    if san is not None and len(request.subject.rdns) != 0 and not any(
            isinstance(name, x509.OtherName) and name.type_id.dotted_string == HARDWARE_MODULE_NAME_OID
            for name in san):
        # A named subject with an ordinary SAN is an Organisation CSR asking for something the profile
        # forbids, not a Device CSR with a subject: say so rather than talk about Device IDs.
        raise CsrRejected(CR_SAN, "an Organisation Certificate carries no subjectAltName; remove the "
                          "subjectAltName from the CSR (only Device CSRs carry one, a hardwareModuleName).")
    kind: CsrKind = "device" if san is not None else "organisation"
    if expected is not None and kind != expected:
        hint = ("it carries a subjectAltName, so it is a Device CSR" if kind == "device"
                else "it carries no hardwareModuleName, so it is not a Device CSR")
        article = "an" if expected == "organisation" else "a"
        raise CsrRejected(CR_KIND, f"{article} {expected.capitalize()} CSR was expected, but {hint}.")
    fields = _device(request, san, policies) if san is not None else _organisation(request, usage, policies)
    return ValidatedCsr(der=der, sha256=hashlib.sha256(der).hexdigest(), kind=kind, public_key=public_key,
                        key_usage=usage, **fields)
