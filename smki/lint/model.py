"""A read-only view of one certificate's raw structure, and what the validators are given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as asn1_x509

from smki.ca.profile import CertificateProfile
from smki.core.policy import Policies

EXTENSION_OIDS = {
    "keyUsage": "2.5.29.15",
    "subjectKeyIdentifier": "2.5.29.14",
    "subjectAltName": "2.5.29.17",
    "basicConstraints": "2.5.29.19",
    "certificatePolicies": "2.5.29.32",
    "authorityKeyIdentifier": "2.5.29.35",
    "extendedKeyUsage": "2.5.29.37",
    "cRLDistributionPoints": "2.5.29.31",
    "authorityInfoAccess": "1.3.6.1.5.5.7.1.1",
    "wrappedApexContingencyKey": "1.3.6.1.5.5.7.1.20",
}
EXTENSION_NAMES = {oid: name for name, oid in EXTENSION_OIDS.items()}

ATTRIBUTE_OIDS = {"commonName": "2.5.4.3", "organizationalUnitName": "2.5.4.11", "x500UniqueIdentifier": "2.5.4.45"}
ATTRIBUTE_NAMES = {oid: name for name, oid in ATTRIBUTE_OIDS.items()}

# Universal tags of the string types a Name may use, read from the raw encoding (asn1crypto's
# DirectoryString hides which one was used).
STRING_TAGS = {0x0C: "UTF8String", 0x13: "PrintableString", 0x03: "BitString", 0x14: "T61String",
               0x16: "IA5String", 0x1C: "UniversalString", 0x1E: "BMPString"}


def extension_name(oid: str) -> str:
    return EXTENSION_NAMES.get(oid, oid)


def attribute_name(oid: str) -> str:
    return ATTRIBUTE_NAMES.get(oid, oid)


@dataclass(frozen=True)
class Attribute:
    oid: str
    string_type: str
    raw: bytes            # the value's full DER encoding
    value: Any            # str for strings, bytes for others

    @property
    def name(self) -> str:
        return attribute_name(self.oid)


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    raw: asn1_x509.Extension

    @property
    def name(self) -> str:
        return extension_name(self.oid)

    def parsed(self) -> Any:
        """The decoded value; raises ValueError when it cannot be decoded."""
        value = self.raw["extn_value"].parsed
        value.native  # noqa: B018 - asn1crypto decodes lazily; force it here
        return value


def _attribute(type_and_value: asn1_x509.NameTypeAndValue) -> Attribute:
    raw = type_and_value["value"].dump()
    tag = raw[0]
    string_type = STRING_TAGS.get(tag, f"tag 0x{tag:02X}")
    try:
        value: Any = type_and_value["value"].native
    except ValueError:
        value = raw
    return Attribute(type_and_value["type"].dotted, string_type, raw, value)


def name_rdns(name: asn1_x509.Name) -> list[list[Attribute]]:
    return [[_attribute(tv) for tv in rdn] for rdn in name.chosen]


class CertificateView:
    """What validators read. Everything comes from the raw DER, so odd encodings stay visible."""

    def __init__(self, certificate: asn1_x509.Certificate, der: bytes) -> None:
        self.certificate = certificate
        self.der = der
        self.tbs = certificate["tbs_certificate"]
        self.extensions = [Extension(e["extn_id"].dotted, bool(e["critical"].native), e)
                           for e in self.tbs["extensions"]]

    def extension(self, name: str) -> Extension | None:
        oid = EXTENSION_OIDS[name]
        return next((e for e in self.extensions if e.oid == oid), None)

    def parsed(self, name: str) -> Any | None:
        """The decoded extension, or None when absent or undecodable (EXT06 reports the latter)."""
        extension = self.extension(name)
        if extension is None:
            return None
        try:
            return extension.parsed()
        except ValueError:
            return None

    @property
    def subject_rdns(self) -> list[list[Attribute]]:
        return name_rdns(self.tbs["subject"])

    @property
    def issuer_rdns(self) -> list[list[Attribute]]:
        return name_rdns(self.tbs["issuer"])

    @property
    def self_issued(self) -> bool:
        return self.tbs["issuer"].dump() == self.tbs["subject"].dump()

    @property
    def is_ca(self) -> bool:
        constraints = self.parsed("basicConstraints")
        return bool(constraints is not None and constraints["ca"].native)

    def subject_attribute(self, name: str) -> Attribute | None:
        oid = ATTRIBUTE_OIDS[name]
        return next((a for rdn in self.subject_rdns for a in rdn if a.oid == oid), None)

    @property
    def public_point(self) -> bytes:
        """The subjectPublicKey BIT STRING's value (for EC, the encoded point)."""
        return bytes(self.public_key_bits[1:])

    @property
    def public_key_bits(self) -> bytes:
        """The subjectPublicKey BIT STRING contents: the unused-bits octet, then the value."""
        return bytes(self.tbs["subject_public_key_info"]["public_key"].contents)


@dataclass(frozen=True)
class LintContext:
    policies: Policies
    profile: CertificateProfile | None
    issuer_profile: CertificateProfile | None   # None for "self" or when no profile applies
