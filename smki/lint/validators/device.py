"""The Device Certificate subjectAltName: one hardwareModuleName (RFC 4108) naming the Device ID."""

from __future__ import annotations

from collections.abc import Iterator

from smki.core.asn1 import HARDWARE_MODULE_NAME_OID, HardwareModuleName
from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

DEVICE_ID_OCTETS = 8


def hardware_module_name(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    if context.profile is None or context.profile.extension("subjectAltName") is None:
        return
    names = view.parsed("subjectAltName")
    if names is None:
        return
    others = [n for n in names if n.name == "other_name" and n.chosen["type_id"].dotted == HARDWARE_MODULE_NAME_OID]
    if len(names) != 1 or len(others) != 1:
        yield finding("LN:SAN01", f"subjectAltName holds {len(names)} names, {len(others)} hardwareModuleName; "
                      "must be exactly one hardwareModuleName otherName", "subjectAltName")
    if not others:
        return
    try:
        # otherName value is [0] EXPLICIT; parse from the raw encoding, whatever asn1crypto made of it
        module = HardwareModuleName.load(others[0].chosen["value"].dump(), explicit=0, strict=True)
        hw_type, serial = module["hw_type"].dotted, module["hw_serial_num"].native
    except ValueError as exc:
        yield finding("LN:SAN01", f"hardwareModuleName cannot be decoded: {exc}", "subjectAltName")
        return
    expected = context.policies.environment.hardware_module_type.dotted_string
    if hw_type != expected:
        yield finding("LN:SAN02", f"hwType is {hw_type}; the environment's is {expected}", "subjectAltName")
    if len(serial) != DEVICE_ID_OCTETS:
        yield finding("LN:SAN03", f"hwSerialNum is {len(serial)} octets, must be 8 (the Device ID)",
                      "subjectAltName")
