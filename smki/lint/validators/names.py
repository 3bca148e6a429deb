"""Issuer and subject names: attribute order, string types, constants, role OU, x500UniqueIdentifier."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from smki.ca.profile import SubjectAttribute
from smki.lint.findings import Finding, finding
from smki.lint.model import ATTRIBUTE_OIDS, Attribute, CertificateView, LintContext

ROLE_OU = re.compile(r"^[0-9A-F]{2}$")
ENTITY_IDENTIFIER_BITS = 64


def _shape(rdns: list[list[Attribute]], spec: Sequence[SubjectAttribute], *, order_code: str, type_code: str,
           value_code: str | None, field: str) -> Iterator[Finding]:
    """Compare a Name with a profile's attribute list: in order, optional ones may be skipped."""
    if any(len(rdn) != 1 for rdn in rdns):
        yield finding("LN:SUB03", f"{field} has a multi-valued RDN", field)
    attributes = [a for rdn in rdns for a in rdn]
    position = 0
    for attribute in attributes:
        match = next((i for i in range(position, len(spec))
                      if ATTRIBUTE_OIDS.get(spec[i].attribute) == attribute.oid), None)
        if match is None:
            where = "out of order" if any(ATTRIBUTE_OIDS.get(s.attribute) == attribute.oid for s in spec) \
                else "not in the profile"
            yield finding(order_code, f"{field} attribute {attribute.name} is {where}", field)
            continue
        for skipped in spec[position:match]:
            if not skipped.optional:
                yield finding(order_code, f"{field} lacks {skipped.attribute} before {attribute.name}", field)
        expected = spec[match]
        if attribute.string_type != expected.string_type:
            yield finding(type_code, f"{field} {attribute.name} is {attribute.string_type}, the profile wants "
                          f"{expected.string_type}", field)
        if value_code and expected.value is not None and attribute.value != expected.value:
            yield finding(value_code, f"{field} {attribute.name} is {attribute.value!r}, the profile fixes "
                          f"{expected.value!r}", field)
        position = match + 1
    for missing in spec[position:]:
        if not missing.optional:
            yield finding(order_code, f"{field} lacks {missing.attribute}", field)


def subject(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    if context.profile is None:
        return
    yield from _shape(view.subject_rdns, context.profile.subject, order_code="LN:SUB01", type_code="LN:SUB02",
                      value_code="LN:SUB04", field="subject")


def issuer(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    """The issuer must look like the issuing CA's subject (its profile); a root must be self-issued."""
    if context.profile is None:
        return
    if context.profile.issuer == "self":
        if not view.self_issued:
            yield finding("LN:ISS03", "a root certificate must be self-issued (issuer = subject)", "issuer")
        return
    if context.issuer_profile is None:
        return
    yield from _shape(view.issuer_rdns, context.issuer_profile.subject, order_code="LN:ISS02",
                      type_code="LN:ISS01", value_code="LN:ISS02", field="issuer")


def remote_party_role(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    """End entities with a role OU (Organisation Certificates): GBCS RemotePartyRole as two hex digits."""
    if context.profile is None or context.profile.is_ca:
        return
    ou = view.subject_attribute("organizationalUnitName")
    if ou is None:
        return
    if not isinstance(ou.value, str) or not ROLE_OU.match(ou.value):
        yield finding("LN:ROL01", f"subject OU {ou.value!r} is not two upper-case hex digits", "subject")
        return
    role = context.policies.roles.by_ou(ou.value)
    if role is None:
        yield finding("LN:ROL02", f"subject OU {ou.value} (role {int(ou.value, 16)}) is not a known Remote "
                      "Party Role", "subject")
        return
    if role.ca:
        yield finding("LN:ROL03", f"role {ou.value} ({role.name}) is a CA role, not for an end entity", "subject")
        return
    usages = view.parsed("keyUsage")
    held = {"digital_signature": "digitalSignature", "key_agreement": "keyAgreement"}
    for usage in sorted(usages.native if usages is not None else ()):
        if usage in held and held[usage] not in role.usages:
            yield finding("LN:ROL04", f"a {role.name} does not hold {held[usage]} certificates (roles.yaml)",
                          "keyUsage")


def unique_identifier(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    attribute = view.subject_attribute("x500UniqueIdentifier")
    if attribute is None:
        return
    content = attribute.raw[2:] if len(attribute.raw) > 1 and attribute.raw[1] < 0x80 else b""
    if attribute.raw[0] != 0x03 or len(content) != 1 + ENTITY_IDENTIFIER_BITS // 8 or content[0] != 0:
        yield finding("LN:UID01", f"x500UniqueIdentifier is {attribute.string_type} {attribute.raw.hex()}; must "
                      "be a BIT STRING of 64 bits (0 unused bits) holding the Entity Identifier", "subject")
