"""``smki srept``: open and close SREPT runs, read progress, make and verify evidence packs, record a pass, and
run the model Party (``selftest``) against a sandbox."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from cryptography import x509

from smki.core.errors import SmkiError
from smki.srept.runs import SreptService


def _service() -> SreptService:
    from smki.instance import Instance
    from smki.schema import migrate

    instance = Instance.from_env()
    migrate(instance.database)
    return SreptService(instance)


def _fail(error: SmkiError) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


@click.group("srept")
def srept() -> None:
    """SREPT rehearsal: runs, progress, evidence packs, the pass, and the model Party."""


@srept.command("open")
@click.argument("organisation_id", type=int)
def open_command(organisation_id: int) -> None:
    """Open a SREPT run for the Party ORGANISATION_ID (as the sandbox's operator at the console)."""
    try:
        opened = _service().open(None, organisation_id)
    except SmkiError as error:
        _fail(error)
        return
    click.echo(f"SREPT run {opened.run.id} open for Party {organisation_id}: {len(opened.run.scenarios)} scenarios")
    click.echo(f"run key (shown once; send it as X-SREPT-Run-Key): {opened.run_key}")


@srept.command("close")
@click.argument("run_id", type=int)
def close_command(run_id: int) -> None:
    """Close run RUN_ID without a pass (the rehearsal footing ends)."""
    try:
        run = _service().close(None, run_id)
    except SmkiError as error:
        _fail(error)
        return
    click.echo(f"SREPT run {run.id} {run.status}")


@srept.command("progress")
@click.argument("run_id", type=int)
def progress_command(run_id: int) -> None:
    """Each scenario of run RUN_ID: not run, passed or failed."""
    try:
        progress = _service().progress(None, run_id)
    except SmkiError as error:
        _fail(error)
        return
    click.echo(f"SREPT run {run_id} ({progress.party}, {progress.run.status}): {progress.count('passed')} passed, "
               f"{progress.count('failed')} failed, {progress.count('not_run')} not run")
    for s in progress.scenarios:
        click.echo(f"  {s.id:<8} {s.state:<8} {s.kind:<8} [{s.confidence}] {s.title}")


@srept.command("pack")
@click.argument("run_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the zip (default: srept-run-RUN_ID.zip here).")
def pack_command(run_id: int, out: Path | None) -> None:
    """Write the evidence pack of run RUN_ID."""
    from smki.srept.evidence import build_pack

    service = _service()
    try:
        pack = build_pack(service.instance, service, None, run_id)
    except SmkiError as error:
        _fail(error)
        return
    target = out or Path(f"srept-run-{run_id}.zip")
    target.write_bytes(pack.data)
    click.echo(f"{target}: manifest SHA-256 {pack.manifest_sha256}")


@srept.command("verify")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The sandbox's IKI CA certificate (PEM) to trust, rather than the copy in the pack.")
def verify_command(pack: Path, trust: Path | None) -> None:
    """Check an evidence pack: the signer, the manifest's signature, and every file; exits 1 naming each file
    that was changed, removed or added."""
    from smki.srept.evidence import verify_pack

    trusted = x509.load_pem_x509_certificate(trust.read_bytes()) if trust else None
    try:
        result = verify_pack(pack, trusted)
    except SmkiError as error:
        _fail(error)
        return
    if result.valid:
        click.echo(f"{pack}: valid; {result.files} files as signed by {result.signer}")
        return
    click.echo(f"{pack}: NOT valid", err=True)
    for problem in result.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


@srept.command("pass")
@click.argument("run_id", type=int)
def pass_command(run_id: int) -> None:
    """Record the Party's SREPT pass in the RAPP on the strength of run RUN_ID (every scenario passed)."""
    from smki.srept.evidence import build_pack

    service = _service()
    try:
        digest = build_pack(service.instance, service, None, run_id).manifest_sha256
        run = service.record_pass(None, run_id, digest)
    except SmkiError as error:
        _fail(error)
        return
    click.echo(f"SREPT pass recorded for Party {run.organisation_id} on run {run.id} (pack {digest})")


@srept.command("selftest")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="The sandbox to rehearse against.")
@click.option("--operator-token", envvar="SMKI_SREPT_OPERATOR_TOKEN", default=None,
              help="An RA operator's API token, for the RA's part (default: $SMKI_SREPT_OPERATOR_TOKEN).")
@click.option("--timeout", type=float, default=180.0, show_default=True,
              help="Seconds to wait for a batch to complete or the CRL to list a revocation.")
@click.option("--record-pass", is_flag=True, help="Record the model Party's SREPT pass at the end.")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The IKI CA certificate that verifies the sandbox's TLS certificate (https URLs).")
def selftest_command(url: str, operator_token: str | None, timeout: float, record_pass: bool,
                     ca_bundle: str | None) -> None:
    """Play every scenario as a new Party would, over HTTP; exits 0 only if every scenario passed."""
    from smki.srept.selftest import ModelParty, SelftestFailed

    if not operator_token:
        click.echo("error: give an RA operator's API token (--operator-token or SMKI_SREPT_OPERATOR_TOKEN); "
                   "smki demo writes one", err=True)
        sys.exit(2)
    party = ModelParty(url, operator_token, timeout=timeout, say=click.echo,
                       verify_tls=ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True)
    try:
        outcome = party.play(record_pass=record_pass)
    except SelftestFailed as failure:
        click.echo(f"self-test stopped: {failure}", err=True)
        sys.exit(1)
    states = outcome.scenarios
    passed = sum(1 for state in states.values() if state == "passed")
    click.echo(f"run {outcome.run_id}: {passed} of {len(states)} scenarios passed")
    for scenario, state in states.items():
        if state != "passed":
            click.echo(f"  {scenario}: {state}", err=True)
    for problem in outcome.pack_problems:
        click.echo(f"  evidence pack: {problem}", err=True)
    if outcome.pass_recorded:
        click.echo(f"SREPT pass recorded for Party {outcome.party_id}")
    sys.exit(0 if outcome.all_passed else 1)
