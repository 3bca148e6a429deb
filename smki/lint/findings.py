"""Findings, and the catalogue that gives every finding code its one severity and its title."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smki.core.errors import check_code


class Severity(StrEnum):
    ERROR = "error"      # the certificate does not meet the SMKI profile; exit status 1
    WARNING = "warning"  # observed practice ([O]) differs; worth a look, exit status unaffected


E, W = Severity.ERROR, Severity.WARNING

# code: (severity, title). The README table is this catalogue; a test keeps the two in step.
CATALOGUE: dict[str, tuple[Severity, str]] = {
    "LN:TYP01": (E, "certificate type cannot be told from its content (use --profile)"),
    "LN:VER01": (E, "not an X.509 version 3 certificate"),
    "LN:SER01": (E, "serial number is not the profile's number of octets"),
    "LN:SER02": (E, "serial number is not positive"),
    "LN:ALG01": (E, "signature algorithm is not ecdsa-with-SHA256"),
    "LN:ALG02": (E, "signature AlgorithmIdentifier carries parameters (must be absent, not even NULL)"),
    "LN:ALG03": (E, "tbsCertificate.signature differs from signatureAlgorithm"),
    "LN:KEY01": (E, "public key is not EC on the named curve P-256"),
    "LN:KEY02": (E, "public key is not an uncompressed point on P-256"),
    "LN:SIG01": (E, "self-signed certificate's signature does not verify with its own key"),
    "LN:ISS01": (E, "issuer attribute has the wrong string type"),
    "LN:ISS02": (E, "issuer name does not have the issuing CA's subject shape"),
    "LN:ISS03": (E, "self-signed profile but issuer differs from subject"),
    "LN:SUB01": (E, "subject attributes missing, unexpected or out of the profile's order"),
    "LN:SUB02": (E, "subject attribute has the wrong string type"),
    "LN:SUB03": (E, "multi-valued RDN (every RDN must hold one attribute)"),
    "LN:SUB04": (E, "subject attribute has a value other than the profile's constant"),
    "LN:ROL01": (E, "subject OU is not two upper-case hex digits"),
    "LN:ROL02": (E, "subject OU is not a known Remote Party Role (policies/roles.yaml)"),
    "LN:ROL03": (E, "end-entity certificate carries a CA role"),
    "LN:ROL04": (W, "key usage is not one a party holds for this role (roles.yaml usages)"),
    "LN:UID01": (E, "x500UniqueIdentifier is not a BIT STRING of 64 bits"),
    "LN:VAL01": (E, "validity time not in the encoding the profile requires"),
    "LN:VAL02": (E, "validity time encoding breaks RFC 5280 (UTCTime until 2049, GeneralizedTime from 2050)"),
    "LN:VAL03": (E, "notAfter is not GeneralizedTime 99991231235959Z as the profile fixes it"),
    "LN:VAL04": (E, "notBefore is after notAfter"),
    "LN:VAL05": (E, "validity time is not in the DER form RFC 5280 requires (seconds, Z, no fraction)"),
    "LN:EXT01": (E, "extensions are not in the profile's order"),
    "LN:EXT02": (E, "extension not allowed by the profile"),
    "LN:EXT03": (E, "extension required by the profile is missing"),
    "LN:EXT04": (E, "extension criticality differs from the profile"),
    "LN:EXT05": (E, "extension appears more than once"),
    "LN:EXT06": (E, "extension value cannot be decoded"),
    "LN:KU01": (E, "end-entity keyUsage is not exactly one of digitalSignature / keyAgreement"),
    "LN:KU02": (E, "CA keyUsage differs from the profile's usages"),
    "LN:BC01": (E, "basicConstraints cA / pathLenConstraint differ from the profile"),
    "LN:SKI01": (E, "subjectKeyIdentifier is not 8 octets"),
    "LN:SKI02": (E, "subjectKeyIdentifier is not RFC 5280 method 2 of the public key"),
    "LN:AKI01": (E, "authorityKeyIdentifier carries authorityCertIssuer / SerialNumber"),
    "LN:AKI02": (E, "authorityKeyIdentifier keyIdentifier missing or not 8 octets"),
    "LN:POL01": (E, "certificatePolicies lacks the environment's policy OID for this type"),
    "LN:POL02": (E, "Device Certificate asserts more than one policy"),
    "LN:SAN01": (E, "subjectAltName is not exactly one hardwareModuleName otherName"),
    "LN:SAN02": (E, "hwType is not the environment's hardware module type"),
    "LN:SAN03": (E, "hwSerialNum is not 8 octets (a Device ID)"),
    "LN:DUP01": (E, "another certificate has the same issuer and serial but different content"),
    "LN:PTH01": (E, "path validation: issuer not found in --chain"),
    "LN:PTH02": (E, "path validation: signature does not verify"),
    "LN:PTH03": (E, "path validation: a certificate is not valid at the validation time"),
    "LN:PTH04": (E, "path validation: certificate policy processing failed"),
    "LN:PTH05": (E, "path validation: issuer is not allowed to issue (CA constraints)"),
    "LN:PTH06": (E, "path validation: environment policy OID not asserted along the path"),
    "LN:PTH07": (E, "path validation failed for another reason (OpenSSL's message says which)"),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    field: str | None = None

    def __post_init__(self) -> None:
        check_code(self.code)

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "severity": str(self.severity), "message": self.message, "field": self.field}


def finding(code: str, message: str, field: str | None = None) -> Finding:
    """A finding with the catalogue's severity (an unknown code is a programming error)."""
    severity, _title = CATALOGUE[code]
    return Finding(code, severity, message, field)
