"""certificatePolicies: the active environment's policy OID for the certificate's type."""

from __future__ import annotations

from collections.abc import Iterator

from smki.lint.findings import Finding, finding
from smki.lint.model import CertificateView, LintContext

# GBCS / Device Certificate Policy: a Device Certificate asserts a single policy OID [V]
SINGLE_POLICY_PROFILES = ("device",)


def certificate_policies(view: CertificateView, context: LintContext) -> Iterator[Finding]:
    value = view.parsed("certificatePolicies")
    if context.profile is None or value is None:
        return
    asserted = [p["policy_identifier"].dotted for p in value]
    expected = context.policies.environment.policy_oid(context.profile.policy).dotted_string
    if expected not in asserted:
        yield finding("LN:POL01", f"certificatePolicies asserts {', '.join(asserted) or 'nothing'}; the "
                      f"{context.policies.environment.name} environment's {context.profile.policy} policy is "
                      f"{expected}", "certificatePolicies")
    if context.profile.name in SINGLE_POLICY_PROFILES and len(asserted) > 1:
        yield finding("LN:POL02", f"a Device Certificate asserts a single policy, this one {len(asserted)}",
                      "certificatePolicies")
