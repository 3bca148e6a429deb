"""``smki repository ...``, ``smki revoke`` and ``smki crl ...``: the Repository's operator commands.

``smki revoke`` is the operator (DCC) channel: recorded with ``requested_by=operator:<user>``. Parties'
Certificate Revocation Requests go through the RA, which decides who may revoke and then calls the
same :meth:`repository.store.CertificateRepository.revoke`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
from pathlib import Path
from typing import Any

import click

from smki.core.errors import SmkiError
from smki.instance import Instance
from smki.schema import migrate


def _fail(error: SmkiError) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


def _instance() -> Instance:
    instance = Instance.from_env()
    migrate(instance.database)
    return instance


def serve_options(instance: Instance, host: str, port: int, dccboxed: bool) -> dict[str, Any]:
    """What ``smki serve`` adds for the Repository: the publication scheduler as a companion process, and
    with ``--dccboxed`` a second bind on the DCC Boxed port and the compatibility setting on."""
    from repository.settings import load_repository_settings
    from smki.web.server import smki_command

    options: dict[str, Any] = {"companions": [smki_command("repository", "publisher")]}
    if dccboxed:
        os.environ["SMKI_DCCBOXED"] = "1"  # read by the workers' Repository web service
        boxed_port = int(load_repository_settings(instance.policies.directory).dccboxed["port"])
        options["bind"] = [f"{host}:{port}", f"{host}:{boxed_port}"]
    return options


@click.group("repository")
def repository_group() -> None:
    """SMKI Repository: lodging, extracts, sync, credentials."""


@repository_group.command("lodge")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--status", type=click.Choice(["P", "I", "N"]), default="I", show_default=True)
@click.option("--manufacturing", is_flag=True, help="Set the ManufacturingFlag.")
def lodge(files: tuple[Path, ...], status: str, manufacturing: bool) -> None:
    """Lodge certificate FILES (PEM, possibly several per file, or DER) in one transaction."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from smki.publication import certificate_repository

    ders: list[bytes] = []
    for path in files:
        data = path.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            ders.extend(c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(data))
        else:
            ders.append(data)
    try:
        summary = certificate_repository(_instance()).lodge_many(
            ders, status=status, manufacturing_flag=manufacturing, lodged_by=f"operator:{getpass.getuser()}")
    except SmkiError as error:
        _fail(error)
    click.echo(f"lodged {summary.lodged}, already present {summary.already_present}")


@repository_group.command("lodge-hierarchy")
def lodge_hierarchy_command() -> None:
    """Lodge this instance's OCA, DCA and Recovery certificates (idempotent)."""
    from smki.publication import lodge_hierarchy

    click.echo(f"lodged {lodge_hierarchy(_instance())} CA certificates")


@repository_group.command("expire")
def expire() -> None:
    """Run the expiry sweep now (P, I, N certificates past notAfter become E)."""
    from smki.publication import certificate_repository

    click.echo(f"{certificate_repository(_instance()).expire_due()} certificates expired")


@repository_group.group("extract")
def extract() -> None:
    """Make extracts (zip with manifest and hashes)."""


def _make_extract(kind: str, out: Path | None) -> None:
    from repository.extracts import ExtractWriter
    from smki.publication import certificate_repository, extracts_directory

    instance = _instance()
    writer = ExtractWriter(certificate_repository(instance), out or extracts_directory(instance))
    try:
        made = writer.full() if kind == "full" else writer.delta()
    except SmkiError as error:
        _fail(error)
    click.echo(f"{made.path} ({made.records} records, sha256 {made.sha256})")


_OUT = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                    help="Folder (default: the instance's).")


@extract.command("full")
@_OUT
def extract_full(out: Path | None) -> None:
    """Make a full extract of every record."""
    _make_extract("full", out)


@extract.command("delta")
@_OUT
def extract_delta(out: Path | None) -> None:
    """Make a delta of every change since the previous extract."""
    _make_extract("delta", out)


@repository_group.command("sync")
@click.argument("extracts", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--target", "target_url", required=True, help="Database URL of the local copy.")
def sync(extracts: tuple[Path, ...], target_url: str) -> None:
    """Rebuild or update a local copy at --target from EXTRACTS (zip files or folders holding them)."""
    from repository.extracts import RepositorySync
    from repository.store import CertificateRepository
    from smki.core.db import Database

    paths: list[Path] = []
    for item in extracts:
        paths.extend(sorted(item.glob("smki-repository-*.zip")) if item.is_dir() else [item])
    database = Database(target_url)
    migrate(database)
    try:
        applied = RepositorySync(CertificateRepository(database)).apply_all(paths)
    except SmkiError as error:
        _fail(error)
    for extract_ in applied:
        click.echo(f"applied {extract_.kind} {extract_.path.name} (to {extract_.manifest['until']})")


ROLE_HELP = ("A Repository role the user holds, for reading documents lodged for it: sec_panel (the SEC "
             "Panel) or smki_pma (the SMKI PMA). Repeat for both.")


@repository_group.command("add-user")
@click.argument("username")
@click.option("--holder", required=True, help="Who the user acts for (as the RA names them).")
@click.option("--role", "roles", multiple=True, help=ROLE_HELP)
@click.password_option()
def add_user(username: str, holder: str, roles: tuple[str, ...], password: str) -> None:
    """Create a Repository portal user."""
    from repository.access import RepositoryAccess

    try:
        RepositoryAccess(_instance().database).create_user(username, password, holder, roles=roles)
    except SmkiError as error:
        _fail(error)
    click.echo(f"created Repository user {username}" + (f" with roles {', '.join(sorted(roles))}" if roles else ""))


@repository_group.command("set-roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help=ROLE_HELP + " None withdraws every role.")
def set_roles(username: str, roles: tuple[str, ...]) -> None:
    """Set the Repository roles of USERNAME (replacing those it held); effective at its next request."""
    from repository.access import RepositoryAccess

    try:
        held = RepositoryAccess(_instance().database).set_roles(username, roles)
    except SmkiError as error:
        _fail(error)
    click.echo(f"Repository user {username} holds " + (", ".join(sorted(held)) if held else "no roles"))


@repository_group.command("issue-api-key")
@click.option("--holder", required=True)
@click.option("--may-lodge-documents", is_flag=True)
def issue_api_key(holder: str, may_lodge_documents: bool) -> None:
    """Issue a Repository API key (printed once)."""
    from repository.access import RepositoryAccess

    click.echo(RepositoryAccess(_instance().database).issue_api_key(holder, may_lodge_documents=may_lodge_documents))


@repository_group.command("publisher")
def publisher() -> None:
    """Run the publication scheduler in the foreground (when not using ``smki serve``)."""
    import signal
    import time

    from smki.publication import PublicationScheduler

    def stop(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (from smki serve, or a service manager) stops it as Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    instance = _instance()
    migrate(instance.database)
    scheduler = PublicationScheduler(instance)
    scheduler.start()
    click.echo("publisher running; Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        scheduler.shutdown()


@click.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, help="keyCompromise, ceasedToBeEligible, inaccurateInformation, "
              "rejectedOnReceipt, or an RFC 5280 reason name.")
@click.option("--issuer", default=None, help="Issuer DN, if two issuers share the serial.")
@click.option("--operator", default=None, help="Who is revoking, for the record (default: $USER).")
@click.option("--publish", "publish_now", is_flag=True, help="Publish the CRL/ARL at once instead of leaving it "
              "to the publisher.")
def revoke(serial: str, reason: str, issuer: str | None, operator: str | None, publish_now: bool) -> None:
    """Revoke a certificate through the operator (DCC) channel: status R at once, CRL by the publisher."""
    from smki.publication import certificate_repository, publish

    instance = _instance()
    try:
        revocation = certificate_repository(instance).revoke(
            serial, reason, dt.datetime.now(dt.UTC), f"operator:{operator or getpass.getuser()}", issuer=issuer)
    except SmkiError as error:
        _fail(error)
    click.echo(f"revoked {revocation.serial} ({revocation.reason}); list: {revocation.revocation_list or 'none'}")
    if publish_now and revocation.revocation_list:
        published = publish(instance, revocation.revocation_list)
        click.echo(f"published {revocation.revocation_list} number {published.number}")


@click.group("crl")
def crl_group() -> None:
    """Organisation CRL and ARL."""


@crl_group.command("publish")
@click.option("--list", "which", type=click.Choice(["crl", "arl", "both"]), default="both", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Also write the DER files here.")
def crl_publish(which: str, out: Path | None) -> None:
    """Sign and publish the CRL and/or ARL now."""
    from smki.publication import publish

    instance = _instance()
    for name in (("crl", "arl") if which == "both" else (which,)):
        published = publish(instance, name)
        click.echo(f"{name} number {published.number}: {published.entries} entries, "
                   f"nextUpdate {published.next_update.isoformat()}")
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}-{published.number}.{name}").write_bytes(published.der)


def register(main: click.Group) -> None:
    main.add_command(repository_group)
    main.add_command(revoke)
    main.add_command(crl_group)
