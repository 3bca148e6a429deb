"""Runs the validators over certificates and, with a chain, validates their certification paths."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from smki.ca.profile import CERTIFICATE_PROFILES, CertificateProfile, load_certificate_profile
from smki.core.policy import Policies
from smki.lint.chain import validate_path
from smki.lint.detect import detect
from smki.lint.findings import Finding, Severity, finding
from smki.lint.model import CertificateView, LintContext
from smki.lint.source import LoadedCertificate
from smki.lint.validators import VALIDATORS


@dataclass
class CertificateReport:
    certificate: LoadedCertificate
    profile: str | None
    profile_source: str                 # "given", or why detection chose it
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}


def _profile(policies: Policies, name: str | None) -> CertificateProfile | None:
    return load_certificate_profile(policies.directory, name) if name in CERTIFICATE_PROFILES else None


def _context(policies: Policies, profile_name: str | None) -> LintContext:
    profile = _profile(policies, profile_name)
    issuer = _profile(policies, profile.issuer) if profile is not None and profile.issuer != "self" else None
    return LintContext(policies, profile, issuer)


def _duplicates(target: LoadedCertificate, others: Sequence[LoadedCertificate]) -> list[Finding]:
    """RFC 5280 4.1.2.2: issuer and serial identify one certificate. Two different ones with the same
    pair mean at most one is what the CA signed (a re-signed, altered or corrupted copy)."""
    tbs = target.certificate["tbs_certificate"]
    key = (tbs["issuer"].dump(), tbs["serial_number"].native)
    findings: list[Finding] = []
    labels: set[str] = set()
    for other in others:
        other_tbs = other.certificate["tbs_certificate"]
        if other.der == target.der or other.label in labels \
                or (other_tbs["issuer"].dump(), other_tbs["serial_number"].native) != key:
            continue
        labels.add(other.label)
        same = "identical tbsCertificate, different signature" if other_tbs.dump() == tbs.dump() \
            else "different tbsCertificate"
        findings.append(finding("LN:DUP01", f"{other.label} has the same issuer and serial ({same}); at most one "
                                "of the two is the certificate the CA issued", "serialNumber"))
    return findings


def lint_one(certificate: LoadedCertificate, policies: Policies, *, profile: str | None = None) -> CertificateReport:
    view = CertificateView(certificate.certificate, certificate.der)
    if profile is None:
        detection = detect(view)
        report = CertificateReport(certificate, detection.profile, f"detected: {detection.reason}")
        if detection.profile is None:
            report.findings.append(finding("LN:TYP01", f"cannot tell the certificate type ({detection.reason}); "
                                           "give --profile", "profile"))
    else:
        report = CertificateReport(certificate, profile, "given")
    context = _context(policies, report.profile)
    for validator in VALIDATORS:
        report.findings.extend(validator(view, context))
    return report


def lint(certificates: Sequence[LoadedCertificate], policies: Policies, *, profile: str | None = None,
         chain: Sequence[LoadedCertificate] = (), at: dt.datetime | None = None) -> list[CertificateReport]:
    reports = []
    everything = [*certificates, *chain]
    for certificate in certificates:
        report = lint_one(certificate, policies, profile=profile)
        report.findings.extend(_duplicates(certificate, everything))
        if chain:
            context_profile = _profile(policies, report.profile)
            policy_oid = policies.environment.policy_oid(context_profile.policy).dotted_string \
                if context_profile is not None else None
            report.findings.extend(validate_path(certificate, chain, at=at, policy_oid=policy_oid))
        reports.append(report)
    return reports
