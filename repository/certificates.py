"""What the Repository records about a certificate, read from the certificate itself.

Lodging derives every indexed field from the DER, so a record can never disagree with its certificate.
Certificates that deviate from the GBCS profile (the DCC's own test fixtures include several) are
still described as far as they can be: the Repository stores what the RA lodges.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import NameOID

from repository.errors import RepositoryError
from smki.core.asn1 import parse_hardware_module_name
from smki.core.eui64 import Eui64

HARDWARE_MODULE_NAME = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.4")
X500_UNIQUE_IDENTIFIER = x509.ObjectIdentifier("2.5.4.45")


class CertificateUnreadable(RepositoryError):
    """The bytes lodged are not a certificate the Repository can describe."""


@dataclass(frozen=True)
class CertificateFacts:
    serial: str
    issuer: str
    subject: str
    kind: str                 # organisation, device, oca, dca
    role: int | None
    usage: str | None         # DS or KA
    subject_eui: str | None   # hex, upper-case
    device_id: str | None     # hex, upper-case
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str
    der: bytes


def serial_text(serial: int) -> str:
    """Upper-case hex in whole octets, as DCC Boxed prints serials (``469AFEC2...``)."""
    if serial < 0:
        raise CertificateUnreadable("RP:LDG3", "the certificate has a negative serial number; RFC 5280 "
                                    "requires a positive one, so it cannot be lodged")
    digits = f"{serial:X}"
    return digits.zfill(len(digits) + len(digits) % 2)


def normalise_serial(text: str) -> str:
    """Any hex spelling of a serial (lower case, ``0x``, colons, leading zeros) to the stored form."""
    compact = text.strip().replace(":", "").replace(" ", "")
    if compact.lower().startswith("0x"):
        compact = compact[2:]
    if not compact or len(compact) > 64:
        raise ValueError(f"{text!r} is not a certificate serial number")
    return serial_text(int(compact, 16))


def _role(ou: str | None) -> int | None:
    if ou is None:
        return None
    ou = ou.strip()
    # GBCS writes the role as two hex digits; certificates made before DCC Boxed 1.4.1 wrote it in decimal
    if len(ou) == 2:
        try:
            return int(ou, 16)
        except ValueError:
            return None
    return int(ou) if ou.isdigit() else None


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> x509.NameAttribute | None:
    values = name.get_attributes_for_oid(oid)
    return values[0] if values else None


def _entity_identifier(name: x509.Name) -> str | None:
    attribute = _attribute(name, X500_UNIQUE_IDENTIFIER)
    if attribute is None:
        return None
    value = attribute.value if isinstance(attribute.value, bytes) else str(attribute.value).encode()
    # BIT STRING contents: one octet of unused bits (0), then the 64 bits
    if len(value) == 9 and value[0] == 0:
        value = value[1:]
    return Eui64(value).hex if len(value) == 8 else None


def _device_id(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id != HARDWARE_MODULE_NAME:
            continue
        try:  # the GBCS shape, read at TLV level (this runs for every certificate of a batch)
            _hw_type, octets = parse_hardware_module_name(other.value)
            return octets.hex().upper() if len(octets) == 8 else None
        except ValueError:
            pass  # not the GBCS shape: read it as leniently as below
        try:
            module = core.Sequence.load(other.value)
            serial = module[1]
            octets = serial.native if isinstance(serial, core.OctetString) else core.OctetString.load(
                serial.dump()).native
        except (ValueError, TypeError, IndexError):
            return None
        return octets.hex().upper() if isinstance(octets, bytes) and len(octets) == 8 else None
    return None


def _usage(certificate: x509.Certificate) -> tuple[str | None, bool]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None, False
    ca = usage.key_cert_sign
    if usage.digital_signature and not usage.key_agreement:
        return "DS", ca
    if usage.key_agreement and not usage.digital_signature:
        return "KA", ca
    return None, ca


def _is_ca(certificate: x509.Certificate, key_cert_sign: bool) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return key_cert_sign


@lru_cache(maxsize=64)
def _name_text(name: x509.Name) -> str:
    """RFC 4514 text of a Name; cached because a batch's certificates share one issuer."""
    return name.rfc4514_string()


def describe(der: bytes) -> CertificateFacts:
    try:
        certificate = x509.load_der_x509_certificate(der)
        serial = serial_text(certificate.serial_number)
        usage, key_cert_sign = _usage(certificate)
        subject = certificate.subject
        ou = _attribute(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
        ou_text = str(ou.value) if ou is not None else None
        device_id = _device_id(certificate)
        if _is_ca(certificate, key_cert_sign):
            kind, usage = ("oca" if ou_text is not None else "dca"), None
        elif device_id is not None:
            kind = "device"
        else:
            kind = "organisation"
        facts = CertificateFacts(
            serial=serial, issuer=_name_text(certificate.issuer), subject=_name_text(subject),
            kind=kind, role=_role(ou_text) if kind in ("organisation", "oca") else None, usage=usage,
            subject_eui=_entity_identifier(subject) if kind == "organisation" else None,
            device_id=device_id if kind == "device" else None,
            not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
            sha256=hashlib.sha256(der).hexdigest(), der=der)
    except CertificateUnreadable:
        raise
    except (ValueError, TypeError) as exc:
        raise CertificateUnreadable("RP:LDG1", f"the bytes lodged are not a DER X.509 certificate ({exc}); "
                                    "lodge the certificate as DER or PEM") from exc
    if kind == "organisation" and facts.subject_eui is None:
        raise CertificateUnreadable("RP:LDG2", "the Organisation Certificate has no 64-bit "
                                    "x500UniqueIdentifier (entity identifier) in its subject")
    return facts


def to_der(data: bytes | str) -> bytes:
    """Accept DER or PEM, so callers can lodge what they have."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            from cryptography.hazmat.primitives.serialization import Encoding

            return x509.load_pem_x509_certificate(raw).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise CertificateUnreadable("RP:LDG1", f"the PEM lodged is not a certificate ({exc})") from exc
    return raw
