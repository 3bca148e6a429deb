"""The ``smki`` command line. Every command honours SMKI_INSTANCE and SMKI_DATABASE_URL."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smki.core.errors import SmkiError
from smki.core.policy import validate_policies
from smki.instance import Instance
from smki.schema import migrate


def fail(error: SmkiError, status: int = 2) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(status)


@click.group()
@click.version_option(package_name="smki-sandbox")
def main() -> None:
    """SMKI sandbox: the GB Smart Metering Key Infrastructure CA, RA and Repository."""


@main.command()
def init() -> None:
    """Create the CA hierarchy, Recovery and Contingency keys, and the database (idempotent)."""
    from smki.bootstrap import initialise

    try:
        instance = Instance.from_env()  # a bad SMKI_* variable (CA:CFG13) or policy file stops here, not later
        validate_policies(instance.settings.policies_dir, instance.settings.environment)
        result = initialise(instance)
    except SmkiError as error:
        fail(error)
    prepare_secrets(instance)
    verb = "created" if result.created else "already present"
    click.echo(f"SMKI instance {instance.settings.instance_dir}: hierarchy {verb}")
    for name, serial in result.certificates.items():
        click.echo(f"  {name:<12} serial {serial}")


@main.group()
def ca() -> None:
    """Certification Authority operations."""


@ca.command("issue")
@click.argument("csr_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the certificate (PEM) here instead of standard output.")
@click.option("--kind", type=click.Choice(["organisation", "device"]),
              help="Refuse the CSR unless it is of this kind.")
@click.option("--operator", default=None, help="Who is issuing, for the ledger (default: $USER).")
def ca_issue(csr_file: Path, out: Path | None, kind: str | None, operator: str | None) -> None:
    """Issue a certificate from CSR_FILE, bypassing the RA. Recorded in the ledger as channel 'operator'."""
    import getpass

    from smki.issuance import IssuanceService

    instance = Instance.from_env()
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    try:
        migrate(instance.database)
        issued = service.issue_from_csr(csr_file.read_bytes(), channel="operator",
                                        requested_by=operator or getpass.getuser(),
                                        expected=kind)  # type: ignore[arg-type]
    except SmkiError as error:
        fail(error)
    if out:
        out.write_bytes(issued.pem)
        click.echo(f"issued {issued.profile} certificate serial {issued.serial} -> {out}", err=True)
    else:
        click.echo(issued.pem.decode(), nl=False)


def prepare_secrets(instance: Instance) -> None:
    """Every secret the instance's processes use, created once here: the portals' session key and the IKI CA
    (key and certificate). Web workers started afterwards only read them; before, each made its own."""
    from smki.ra.iki import IkiAuthority
    from smki.ra.settings import load_ra_settings

    instance.prepare_secrets()
    _ = IkiAuthority(instance, load_ra_settings(instance.settings.policies_dir)).certificate


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", type=click.IntRange(min=1), envvar="SMKI_WEB_WORKERS", show_envvar=True,
              help="Web worker processes.  [default: one per core]")
@click.option("--threads", type=click.IntRange(min=1), default=4, show_default=True, envvar="SMKI_WEB_THREADS",
              show_envvar=True, help="Threads in each web worker.")
@click.option("--batch-workers", type=click.IntRange(min=1), envvar="SMKI_BATCH_WORKERS", show_envvar=True,
              help="Device CSR batch worker processes.  [default: one per core]")
@click.option("--dccboxed", is_flag=True, help="DCC Boxed compatibility: also serve the Repository web service "
              "on port 8083 and accept DCC Boxed's default API key.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a server certificate from the sandbox IKI CA and accept "
              "IKI client certificates (mutual TLS) for ARO and system authentication.")
@click.option("--worker/--no-worker", "device_worker", default=True, show_default=True,
              help="Run the Device CSR batch worker beside the web service (--no-worker when workers run elsewhere).")
@click.option("--reports/--no-reports", "report_schedule", default=True, show_default=True,
              help="Run the CSR Forecast Variance Report schedule beside the web service (SEC L8.9; the claim in the "
              "database lets exactly one schedule produce each month's report, however many run).")
def serve(host: str, port: int, workers: int | None, threads: int, batch_workers: int | None, dccboxed: bool,
          tls: bool, device_worker: bool, report_schedule: bool) -> None:
    """Run the sandbox's web service (initialising the instance on first start), with its CRL publisher,
    a Device CSR batch worker and the variance report schedule beside it. One serve per instance: a second is
    refused (CA:SRV01)."""
    from smki.bootstrap import initialise
    from smki.web.server import cores, run, smki_command

    try:
        instance = Instance.from_env()  # a bad SMKI_* variable (CA:CFG13) or policy file stops here, not later
        validate_policies(instance.settings.policies_dir, instance.settings.environment)
        lock = instance.hold()  # before anything is created: two serves must not initialise one instance at once
        result = initialise(instance)
        prepare_secrets(instance)
    except SmkiError as error:
        fail(error)
    if result.created:
        click.echo(f"initialised a new SMKI instance in {instance.settings.instance_dir}")
    from smki.ra.iki import tls_options  # mutual TLS with IKI client certificates
    from smki.repository_cli import serve_options  # the repository's publisher and DCC Boxed port

    options = serve_options(instance, host, port, dccboxed)
    workers, batch_workers = workers or cores(), batch_workers or cores()
    if device_worker:  # batches are processed as soon as they arrive, with no second command to remember
        options["companions"] = [*options.get("companions", []),
                                 smki_command("worker", "--workers", str(batch_workers))]
    if report_schedule:  # the monthly report is produced on time without anyone remembering to run it
        options["companions"] = [*options.get("companions", []), smki_command("report", "schedule")]
    scheme = "https" if tls else "http"
    extra = [f"{scheme}://{address}" for address in options.get("bind", [])[1:]]  # the DCC Boxed port
    click.echo(f"serving {scheme}://{host}:{port}/ (the portals and API documents are listed there)"
               + (f" and {', '.join(extra)}" if extra else "") + f" with {workers} web workers of {threads} threads"
               + (f" and {batch_workers} batch workers" if device_worker else "")
               + (" and the report schedule" if report_schedule else "") + "; Ctrl-C stops it", err=True)
    if tls:
        options.update(tls_options(instance, host))
    try:
        run(host=host, port=port, workers=workers, threads=threads, keep_fds=[lock.fd], **options)
    except SmkiError as error:
        fail(error)


main.add_command(__import__("smki.lint.cli", fromlist=["lint_command"]).lint_command)  # smki lint
__import__("smki.ra.cli", fromlist=["register"]).register(main)  # smki audit verify, smki demo, smki ra
__import__("smki.repository_cli", fromlist=["register"]).register(main)  # repository, revoke, crl
main.add_command(__import__("smki.devicecsr.cli", fromlist=["worker"]).worker)  # smki worker
main.add_command(__import__("smki.gbcs.cli", fromlist=["gbcs"]).gbcs)  # smki gbcs decode, smki gbcs export
main.add_command(__import__("smki.estate.cli", fromlist=["estate"]).estate)  # smki estate create, show, status
main.add_command(__import__("smki.reports.cli", fromlist=["report"]).report)  # smki report variance, history
__import__("smki.recovery.cli", fromlist=["register"]).register(main)  # smki custody, smki ceremony
main.add_command(__import__("smki.drills.cli", fromlist=["drill"]).drill)  # smki drill run, status, pause, resume
main.add_command(__import__("smki.srept.cli", fromlist=["srept"]).srept)  # smki srept open, progress, pack, verify


if __name__ == "__main__":
    main()
