"""Every field of a certificate, decoded for people (the portal's certificate page)."""

from __future__ import annotations

import hashlib

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from repository.certificates import HARDWARE_MODULE_NAME, serial_text

KEY_USAGE_FLAGS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                   "key_agreement", "key_cert_sign", "crl_sign")
OID_NAMES = {"1.2.840.10045.4.3.2": "ecdsa-with-SHA256", "1.2.840.10045.2.1": "id-ecPublicKey",
             "1.3.6.1.5.5.7.8.4": "id-on-hardwareModuleName", "2.5.4.45": "x500UniqueIdentifier",
             "1.3.6.1.5.5.7.1.20": "WrappedApexContingencyKey"}


def _oid(oid: x509.ObjectIdentifier) -> str:
    name = OID_NAMES.get(oid.dotted_string) or getattr(oid, "_name", None)
    return f"{name} ({oid.dotted_string})" if name and name != "Unknown OID" else oid.dotted_string


def _name(name: x509.Name) -> str:
    parts = []
    for rdn in name.rdns:
        for attribute in rdn:
            value = attribute.value.hex().upper() if isinstance(attribute.value, bytes) else attribute.value
            label = OID_NAMES.get(attribute.oid.dotted_string) or attribute.oid._name
            parts.append(f"{label}={value}")
    return ", ".join(parts) or "(empty)"


def _general_names(names: x509.SubjectAlternativeName) -> str:
    out = []
    for general_name in names:
        if isinstance(general_name, x509.OtherName) and general_name.type_id == HARDWARE_MODULE_NAME:
            try:
                module = core.Sequence.load(general_name.value)
                hw_type = core.ObjectIdentifier.load(module[0].dump()).native
                serial = core.OctetString.load(module[1].dump()).native
                out.append(f"hardwareModuleName: hwType {hw_type}, hwSerialNum {serial.hex().upper()}")
                continue
            except (ValueError, TypeError, IndexError):
                pass
        out.append(str(general_name))
    return "; ".join(out)


def _extension_value(extension: x509.Extension[x509.ExtensionType]) -> str:
    value = extension.value
    if isinstance(value, x509.KeyUsage):
        flags = [flag for flag in KEY_USAGE_FLAGS if getattr(value, flag)]
        if value.key_agreement:
            flags += [f for f in ("encipher_only", "decipher_only") if getattr(value, f)]
        return ", ".join(flags)
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest.hex().upper()
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return f"keyIdentifier {value.key_identifier.hex().upper()}" if value.key_identifier else str(value)
    if isinstance(value, x509.CertificatePolicies):
        return ", ".join(p.policy_identifier.dotted_string for p in value)
    if isinstance(value, x509.BasicConstraints):
        return f"cA {value.ca}" + (f", pathLen {value.path_length}" if value.path_length is not None else "")
    if isinstance(value, x509.SubjectAlternativeName):
        return _general_names(value)
    if isinstance(value, x509.UnrecognizedExtension):
        return f"DER {value.value.hex().upper()}"
    return str(value)


def decode(der: bytes) -> list[tuple[str, str]]:
    certificate = x509.load_der_x509_certificate(der)
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint).hex().upper()
        key_text = f"EC {key.curve.name}, uncompressed point {point}"
    else:
        key_text = type(key).__name__
    rows = [
        ("Version", f"v{certificate.version.value + 1}"),
        ("Serial number", serial_text(certificate.serial_number)),
        ("Signature algorithm", _oid(certificate.signature_algorithm_oid)),
        ("Issuer", _name(certificate.issuer)),
        ("Validity: notBefore", certificate.not_valid_before_utc.isoformat()),
        ("Validity: notAfter", certificate.not_valid_after_utc.isoformat()),
        ("Subject", _name(certificate.subject)),
        ("Subject public key", key_text),
    ]
    for extension in certificate.extensions:
        criticality = "critical" if extension.critical else "non-critical"
        rows.append((f"Extension {_oid(extension.oid)} ({criticality})", _extension_value(extension)))
    rows.append(("Signature", certificate.signature.hex().upper()))
    rows.append(("SHA-256 fingerprint", hashlib.sha256(der).hexdigest().upper()))
    return rows
