"""Tells which SMKI profile a certificate is meant to follow, from its content alone."""

from __future__ import annotations

from dataclasses import dataclass

from smki.core.asn1 import HARDWARE_MODULE_NAME_OID
from smki.lint.model import CertificateView

ROOT_OU, ISSUING_OU = "00", "07"   # GBCS RemotePartyRole root / issuingAuthority in the CA subject OU


@dataclass(frozen=True)
class Detection:
    profile: str | None
    reason: str


def _has_hardware_module_name(view: CertificateView) -> bool:
    names = view.parsed("subjectAltName")
    return names is not None and any(
        n.name == "other_name" and n.chosen["type_id"].dotted == HARDWARE_MODULE_NAME_OID for n in names)


def detect(view: CertificateView) -> Detection:
    """CAs by basicConstraints cA (root when self-issued; OPKI when the subject has a CA role OU);
    Devices by hardwareModuleName or empty subject; Organisations by a role OU or x500UniqueIdentifier."""
    ou = view.subject_attribute("organizationalUnitName")
    if view.is_ca:
        root = view.self_issued
        if ou is not None:
            if ou.value == ROOT_OU or (root and ou.value != ISSUING_OU):
                return Detection("root_oca", f"CA certificate, subject OU {ou.value!r}")
            return Detection("issuing_oca", f"CA certificate, subject OU {ou.value!r}")
        if root:
            return Detection("root_dca", "self-issued CA certificate without a role OU")
        return Detection("issuing_dca", "CA certificate without a role OU")
    if _has_hardware_module_name(view):
        return Detection("device", "subjectAltName holds a hardwareModuleName")
    if not view.subject_rdns:
        return Detection("device", "empty subject")
    if ou is not None or view.subject_attribute("x500UniqueIdentifier") is not None:
        return Detection("organisation", "subject carries a role OU / x500UniqueIdentifier")
    return Detection(None, "no basicConstraints cA, no hardwareModuleName, no role OU or x500UniqueIdentifier")
