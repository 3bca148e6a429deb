"""``smki lint FILE... [--chain FILE ...] [--at DATE] [--profile NAME] [--format text|json]``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from smki.ca.profile import CERTIFICATE_PROFILES
from smki.core.errors import SmkiError
from smki.lint.errors import LintInputError
from smki.lint.findings import Severity
from smki.lint.linter import CertificateReport, lint
from smki.lint.source import read_all

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


def parse_at(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time; UTC unless it says otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise LintInputError("LN:IN04", f"--at {text!r} is not an ISO 8601 date or date-time "
                             "(e.g. 2016-02-01 or 2016-02-01T12:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def render_text(reports: list[CertificateReport]) -> str:
    lines = [f"{r.certificate.label}: {f.severity.upper()} {f.code} {f.message}"
             for r in reports for f in r.findings]
    return "\n".join(lines)


def render_json(reports: list[CertificateReport]) -> str:
    return json.dumps({
        "certificates": [{
            "file": r.certificate.source, "index": r.certificate.index, "profile": r.profile,
            "profile_source": r.profile_source, "findings": [f.as_dict() for f in r.findings],
        } for r in reports],
        "summary": {"certificates": len(reports),
                    "errors": sum(len(r.errors) for r in reports),
                    "warnings": sum(1 for r in reports for f in r.findings if f.severity is Severity.WARNING)},
    }, indent=2)


@click.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--chain", "chain_files", multiple=True, type=click.Path(path_type=Path),
              help="Issuer certificates for path validation; the last one is the trust anchor. Repeatable.")
@click.option("--at", "at_text", default=None, help="Validate the path at this time (ISO 8601), not now.")
@click.option("--profile", type=click.Choice(CERTIFICATE_PROFILES), default=None,
              help="Check against this profile instead of detecting each certificate's type.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint_command(files: tuple[Path, ...], chain_files: tuple[Path, ...], at_text: str | None,
                 profile: str | None, output: str) -> None:
    """Check certificates against the SMKI profile of their type and print every finding with its code.

    Exit status: 0 no errors, 1 errors found, 2 unusable input.
    """
    from smki.core.config import Settings
    from smki.core.policy import load_policies

    try:
        settings = Settings.from_env()
        policies = load_policies(settings.policies_dir, settings.environment)
        at = parse_at(at_text) if at_text else None
        certificates = read_all(list(files))
        chain = read_all(list(chain_files))
    except SmkiError as error:
        click.echo(f"error {error.code}: {error.message}", err=True)
        sys.exit(EXIT_UNUSABLE)
    reports = lint(certificates, policies, profile=profile, chain=chain, at=at)
    text = render_json(reports) if output == "json" else render_text(reports)
    if text:
        click.echo(text)
    errors = sum(len(r.errors) for r in reports)
    if output == "text":
        click.echo(f"{len(reports)} certificate(s) checked, {errors} error(s)", err=True)
    sys.exit(EXIT_FINDINGS if errors else EXIT_CLEAN)
