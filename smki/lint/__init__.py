"""The SMKI profile linter: checks certificates against the profile of their type (``smki lint``)."""

from smki.lint.findings import Finding, Severity
from smki.lint.linter import CertificateReport, lint

__all__ = ["CertificateReport", "Finding", "Severity", "lint"]
