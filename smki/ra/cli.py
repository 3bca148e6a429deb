"""RA commands: ``smki audit verify``, ``smki demo``, ``smki ra ...``. Registered in smki/cli.py."""

from __future__ import annotations

import sys

import click

from smki.core.errors import SmkiError
from smki.instance import Instance
from smki.schema import migrate


def _fail(error: SmkiError) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


@click.group("audit")
def audit_group() -> None:
    """The RA's append-only, hash-chained audit log."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Walk the audit chain; exit 1 if any record was altered, removed or reordered."""
    from smki.ra import audit
    from smki.ra.service import unreleased_serials

    instance = Instance.from_env()
    migrate(instance.database)
    result = audit.verify(instance.database)
    for problem in result.problems:
        click.echo(f"TAMPERED {problem}")
    for serial in unreleased_serials(instance):
        click.echo(f"NOTE certificate {serial} was signed on an RA channel but never released (no audit record "
                   "of its issuance)")
    if not result.intact:
        click.echo(f"audit chain BROKEN: {len(result.problems)} problem(s) in {result.records} record(s)")
        sys.exit(1)
    click.echo(f"audit chain intact: {result.records} record(s)")


@click.command("demo")
def demo_command() -> None:
    """Seed a realistic population (DCC, suppliers, network operators, an other user, a manufacturer) with
    SROs, AROs and their credentials, written to <instance>/demo/. Does nothing if already seeded."""
    from smki.bootstrap import initialise
    from smki.ra.demo import seed_demo

    instance = Instance.from_env()
    try:
        initialise(instance)
        folder = seed_demo(instance)
    except SmkiError as error:
        _fail(error)
    click.echo(f"demo population ready; credentials and a sample CSR in {folder}")
    click.echo((folder / "README.txt").read_text())


@click.group("ra")
def ra_group() -> None:
    """Registration Authority administration."""


@ra_group.command("staff")
@click.argument("role", type=click.Choice(["ra_operator", "pma", "code_admin"]))
@click.argument("name")
def ra_staff(role: str, name: str) -> None:
    """Appoint NAME as an RA operator, SMKI PMA member or Code Administrator; print their API token once."""
    from smki.ra.population import PopulationBuilder
    from smki.ra.service import RegistrationAuthority

    instance = Instance.from_env()
    migrate(instance.database)
    member = PopulationBuilder(RegistrationAuthority(instance), actor="ra:cli").member(None, name, role)
    click.echo(member.token)



def register(main: click.Group) -> None:
    """Add the RA's commands to ``smki`` (one line in smki/cli.py calls this)."""
    for command in (audit_group, demo_command, ra_group):
        main.add_command(command)
