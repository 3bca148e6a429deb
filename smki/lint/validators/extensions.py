"""Extension layout from the profile: which ones, in which order, with which criticality."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from smki.lint.findings import Finding, finding
from smki.lint.model import EXTENSION_OIDS, CertificateView, LintContext, extension_name


def layout(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    present = [e.oid for e in view.extensions]
    for oid, count in Counter(present).items():
        if count > 1:
            yield finding("LN:EXT05", f"{extension_name(oid)} appears {count} times", extension_name(oid))
    if context.profile is None:
        return
    specs = {EXTENSION_OIDS[s.type]: s for s in context.profile.extensions}
    for extension in view.extensions:
        spec = specs.get(extension.oid)
        if spec is None:
            yield finding("LN:EXT02", f"{extension.name} is not allowed by the {context.profile.title} profile",
                          extension.name)
        elif extension.critical != spec.critical:
            wanted = "critical" if spec.critical else "non-critical"
            yield finding("LN:EXT04", f"{extension.name} must be {wanted}", extension.name)
    for oid, spec in specs.items():
        if oid not in present:
            yield finding("LN:EXT03", f"{spec.type} is missing", spec.type)
    expected_order = [oid for oid in specs if oid in present]
    actual_order = list(dict.fromkeys(oid for oid in present if oid in specs))
    if actual_order != expected_order:
        yield finding("LN:EXT01", "extensions are in the order " + ", ".join(map(extension_name, actual_order))
                      + "; the profile's order is " + ", ".join(map(extension_name, expected_order)), "extensions")


def decodable(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    for extension in view.extensions:
        if extension.oid not in EXTENSION_OIDS.values():
            continue  # unknown extensions are reported by layout (EXT02), not decoded
        try:
            extension.parsed()
        except ValueError as exc:
            yield finding("LN:EXT06", f"{extension.name} cannot be decoded: {exc}", extension.name)
