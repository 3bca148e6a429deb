"""``profiles/<name>.yaml`` (certificate and CRL profiles) and ``issuance.yaml`` (lint before release)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import Field

from smki.core.policyfiles.base import OID_TEXT, PolicyContext, PolicyModel, Problem, TupleOf

CA_PROFILES = ("root_oca", "issuing_oca", "root_dca", "issuing_dca")
CERTIFICATE_PROFILES = (*CA_PROFILES, "organisation", "device")
CRL_PROFILES = ("crl", "arl")
CaProfileName = Literal["root_oca", "issuing_oca", "root_dca", "issuing_dca"]
CertificateProfileName = Literal["root_oca", "issuing_oca", "root_dca", "issuing_dca", "organisation", "device"]
CrlProfileName = Literal["crl", "arl"]

KeyUsageFlag = Literal["digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
                       "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"]
CERTIFICATE_EXTENSIONS = ("keyUsage", "subjectKeyIdentifier", "authorityKeyIdentifier", "certificatePolicies",
                          "basicConstraints", "subjectAltName", "wrappedApexContingencyKey")
CRL_EXTENSIONS = ("authorityKeyIdentifier", "cRLNumber")
CRL_ENTRY_EXTENSIONS = ("reasonCode",)
GBCS_RULE = "CA:CFG11"
UTC_TIME_UNTIL = 2050  # RFC 5280: UTCTime only for dates before 2050


class Validity(PolicyModel):
    not_before: Literal["start_of_day", "now"]
    """``start_of_day`` (00:00:00Z of the day of issue) or ``now``."""
    years: Annotated[int, Field(gt=0)] | None = None
    """notAfter this many years after notBefore (give this or ``not_after``)."""
    minus_seconds: Annotated[int, Field(ge=0)] = 0
    """... less this many seconds (1: 23:59:59Z the day before the anniversary)."""
    not_after: Annotated[str, Field(pattern=r"^[0-9]{14}Z$")] | None = None
    """A fixed notAfter as GeneralizedTime, e.g. ``99991231235959Z`` (no expiry)."""
    time_encoding: Literal["auto", "UTCTime"] = "auto"
    """``UTCTime`` demands a notAfter before 2050; ``auto`` follows RFC 5280."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if (self.years is None) == (self.not_after is None):
            yield Problem((), "exactly one of years and not_after")
        if self.not_after is not None:
            try:
                moment = dt.datetime.strptime(self.not_after, "%Y%m%d%H%M%SZ")
            except ValueError:
                yield Problem(("not_after",), "a real date and time YYYYMMDDHHMMSSZ", self.not_after)
                return
            if self.time_encoding == "UTCTime" and moment.year >= UTC_TIME_UNTIL:
                yield Problem(("time_encoding",), f"auto, since not_after {self.not_after} is past 2049 and "
                              "needs GeneralizedTime", self.time_encoding, "CA:CFG6")


class SubjectAttribute(PolicyModel):
    attribute: Literal["commonName", "organizationalUnitName", "x500UniqueIdentifier"]
    """The RDN attribute."""
    string_type: Literal["UTF8String", "PrintableString", "BitString"]
    """Its ASN.1 string type."""
    source: Literal["trading_name", "remote_party_role", "entity_identifier", "ca_name", "device_id"] | None = \
        Field(None, alias="from")
    """The field of the request that supplies the value (``from`` in the file)."""
    value: str | None = None
    """A constant value (instead of ``from``)."""
    optional: bool = False
    """Leave the attribute out when the request has no value for it."""


class ExtensionSpec(PolicyModel):
    type: Literal["keyUsage", "subjectKeyIdentifier", "authorityKeyIdentifier", "certificatePolicies",
                  "basicConstraints", "subjectAltName", "wrappedApexContingencyKey", "cRLNumber", "reasonCode"]
    """The extension: a certificate takes the first seven, a CRL authorityKeyIdentifier and cRLNumber, an entry
    reasonCode."""
    critical: bool
    """The extension's criticality."""
    source: Literal["request", "device_id"] | None = Field(None, alias="from")
    """keyUsage ``from: request`` (the CSR's one usage); subjectAltName ``from: device_id``."""
    usages: TupleOf[KeyUsageFlag] | None = None
    """Fixed keyUsage flags (CA certificates)."""
    ca: bool | None = None
    """basicConstraints cA."""
    path_length: Annotated[int, Field(ge=0)] | None = None
    """basicConstraints pathLenConstraint."""
    wrap_algorithm: Annotated[str, Field(pattern=f"^{OID_TEXT.pattern}$")] | None = None
    """wrappedApexContingencyKey: the key-wrap algorithm OID."""

    @cached_property
    def options(self) -> dict[str, Any]:
        """The keys besides type and critical, as the file spells them (``from``, ``usages``, ...)."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"type", "critical"})

    def problems_at(self, loc: tuple[str | int, ...], allowed: tuple[str, ...], what: str) -> Iterator[Problem]:
        if self.type not in allowed:
            yield Problem((*loc, "type"), f"one of {', '.join(allowed)} ({what})", self.type)
        if self.type == "keyUsage" and (self.source is None) == (self.usages is None):
            yield Problem(loc, "keyUsage with exactly one of from: request and usages: [...]")
        if self.type == "basicConstraints" and self.ca is None:
            yield Problem((*loc, "ca"), "true or false: basicConstraints needs cA")


# GBCS section 12 rules for every certificate a device handles [V]. They are not policy: a profile that
# contradicts them is refused, so no edit of policies/ can make the CA issue what no meter will accept.
# (extension, must be present, required criticality)
GBCS_EXTENSION_RULES = (
    ("keyUsage", True, True),
    ("subjectKeyIdentifier", True, False),
    ("certificatePolicies", True, True),
    ("authorityKeyIdentifier", False, False),  # present on all but the self-signed root
)


class CertificateProfile(PolicyModel):
    """``profiles/<name>.yaml`` for a certificate: serial, validity, subject and extensions, in order."""

    name: CertificateProfileName
    """The profile's name; the same as the file's."""
    title: str
    """For people: the profile's name in messages."""
    issuer: Literal["self", "root_oca", "issuing_oca", "root_dca", "issuing_dca"]
    """The CA profile that signs it, or ``self``."""
    policy: Literal["organisation", "device"]
    """Which of the environment's policy OIDs goes into certificatePolicies."""
    serial_octets: Annotated[int, Field(ge=8, le=20)]
    """Serial number length (RFC 5280: at most 20 octets)."""
    validity: Validity
    subject: TupleOf[SubjectAttribute] = ()
    """Single-valued RDNs, in order (empty: an empty Name)."""
    extensions: TupleOf[ExtensionSpec]
    """Extensions, in the order they are written, with their criticality."""

    @property
    def is_ca(self) -> bool:
        return any(e.type == "basicConstraints" and e.ca for e in self.extensions)

    def extension(self, kind: str) -> ExtensionSpec | None:
        return next((e for e in self.extensions if e.type == kind), None)

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if context.stem and self.name != context.stem:
            yield Problem(("name",), f"{context.stem!r}, the name of the file", self.name)
        yield from (Problem(("validity", *p.loc), p.expected, p.found, p.code)
                    for p in self.validity.problems(context))
        for index, attribute in enumerate(self.subject):
            if (attribute.source is None) == (attribute.value is None):
                yield Problem(("subject", index), "exactly one of from and value")
        seen: set[str] = set()
        for index, spec in enumerate(self.extensions):
            yield from spec.problems_at(("extensions", index), CERTIFICATE_EXTENSIONS, "a certificate extension")
            if spec.type in seen:
                yield Problem(("extensions", index, "type"), "each extension once", spec.type)
            seen.add(spec.type)
        yield from self.gbcs_problems()

    def gbcs_problems(self) -> Iterator[Problem]:
        for kind, required, critical in GBCS_EXTENSION_RULES:
            index = next((i for i, e in enumerate(self.extensions) if e.type == kind), None)
            if index is None:
                if required or (kind == "authorityKeyIdentifier" and self.issuer != "self"):
                    yield Problem(("extensions",), f"a {kind} extension, which GBCS requires; the CA will not "
                                  "use the profile without it", code=GBCS_RULE)
            elif self.extensions[index].critical != critical:
                yield Problem(("extensions", index, "critical"), f"{str(critical).lower()}: GBCS requires {kind} "
                              f"{'critical' if critical else 'non-critical'}; the CA will not use the profile",
                              self.extensions[index].critical, GBCS_RULE)


class CrlProfile(PolicyModel):
    """``profiles/crl.yaml`` and ``profiles/arl.yaml``: a revocation list."""

    name: CrlProfileName
    """The profile's name; the same as the file's."""
    title: str
    """For people: the list's name in messages."""
    issuer: CaProfileName
    """The CA profile whose key signs the list."""
    next_update_hours: Annotated[int, Field(gt=0)]
    """How long each list is valid (nextUpdate - thisUpdate)."""
    publication_interval_hours: Annotated[int, Field(gt=0)]
    """A new list at least this often (and after revocations); less than next_update_hours."""
    extensions: TupleOf[ExtensionSpec]
    """The list's extensions, in order."""
    entry_extensions: TupleOf[ExtensionSpec] = ()
    """Extensions of each entry."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if context.stem and self.name != context.stem:
            yield Problem(("name",), f"{context.stem!r}, the name of the file", self.name)
        if self.publication_interval_hours >= self.next_update_hours:
            yield Problem(("publication_interval_hours",), f"fewer hours than next_update_hours "
                          f"({self.next_update_hours}), or relying parties hold an expired list",
                          self.publication_interval_hours)
        for index, spec in enumerate(self.extensions):
            yield from spec.problems_at(("extensions", index), CRL_EXTENSIONS, "a CRL extension")
        for index, spec in enumerate(self.entry_extensions):
            yield from spec.problems_at(("entry_extensions", index), CRL_ENTRY_EXTENSIONS, "a CRL entry extension")


class IssuancePolicy(PolicyModel):
    """``issuance.yaml``: which profiles are linted before a certificate is released."""

    lint_before_release: dict[CertificateProfileName, bool] = Field(default_factory=dict)
    """Certificate profile name -> lint each certificate before release (absent: not linted)."""

    @property
    def linted_profiles(self) -> frozenset[str]:
        return frozenset(profile for profile, on in self.lint_before_release.items() if on)
