"""keyUsage and basicConstraints against the profile (GBCS section 12 rule 3)."""

from __future__ import annotations

from collections.abc import Iterator

from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

# asn1crypto's names for the KeyUsage bits, by the RFC 5280 names the profiles use
KEY_USAGE_NAMES = {
    "digital_signature": "digitalSignature", "non_repudiation": "contentCommitment",
    "key_encipherment": "keyEncipherment", "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement", "key_cert_sign": "keyCertSign", "crl_sign": "cRLSign",
    "encipher_only": "encipherOnly", "decipher_only": "decipherOnly",
}
END_ENTITY_USAGES = ({"digitalSignature"}, {"keyAgreement"})


def key_usage(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    value = view.parsed("keyUsage")
    if context.profile is None or value is None:
        return
    spec = context.profile.extension("keyUsage")
    if spec is None:
        return
    usages = {KEY_USAGE_NAMES[name] for name in value.native}
    shown = ", ".join(sorted(usages)) or "none"
    if "usages" in spec.options:
        if usages != set(spec.options["usages"]):
            yield finding("LN:KU02", f"keyUsage is {shown}; the profile wants "
                          + ", ".join(spec.options["usages"]), "keyUsage")
    elif usages not in END_ENTITY_USAGES:
        yield finding("LN:KU01", f"keyUsage is {shown}; must be exactly one of digitalSignature or keyAgreement",
                      "keyUsage")


def basic_constraints(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    spec = context.profile.extension("basicConstraints") if context.profile else None
    value = view.parsed("basicConstraints")
    if spec is None or value is None:
        return  # absence, or presence where the profile has none, is the layout's finding
    wanted_ca, wanted_length = bool(spec.options.get("ca")), spec.options.get("path_length")
    ca, length = bool(value["ca"].native), value["path_len_constraint"].native
    if ca != wanted_ca or length != wanted_length:
        yield finding("LN:BC01", f"basicConstraints cA {ca} pathLen {length}; the profile wants cA {wanted_ca} "
                      f"pathLen {wanted_length}", "basicConstraints")
