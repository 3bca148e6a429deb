"""``smki custody`` and ``smki ceremony``: Key Custodians' custody of the Recovery and Contingency keys.

    smki custody status [recovery|contingency]
    smki custody init recovery --custodian 12 --custodian 13 ... --shares-dir ./shares
    smki ceremony decide recovery --purpose use --reason "Recovery Scenario Exercise"   (a PMA member's token)
    smki ceremony run recovery --decision 4 --share ./shares/recovery-g1-custodian-12.share --share ...
    smki ceremony history [recovery|contingency]

``custody init`` asks each custodian for their passphrase in turn and writes each sealed share to a file for
that custodian to carry. A ceremony is one sitting at one terminal: ``ceremony run`` opens it under the PMA's
decision, asks each custodian in turn for their passphrase as their share file is presented, and with a quorum
does what the decision was for (``use``: reconstructs the key and proves it by signing; ``reshare`` and
``new_key``: seals it for the new ``--custodian`` list and writes their share files), then closes it. The
shares and the key exist only in that process's memory.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import NoReturn

import click

from smki.core.errors import SmkiError
from smki.instance import Instance
from smki.recovery.custody import KEYS, Custodian, IssuedShare

KEY = click.Choice(sorted(KEYS))


def _fail(error: SmkiError) -> NoReturn:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


def _instance() -> Instance:
    from smki.recovery.intake import finish_custody
    from smki.schema import migrate

    instance = Instance.from_env()
    migrate(instance.database)
    for key, done in finish_custody(instance).items():  # settle what a process that died part-way left
        click.echo(f"{key}: {done} (finishing an earlier custody step that did not complete)", err=True)
    return instance


def _actor(officer: str | None) -> str:
    return f"ceremony-officer:{officer or getpass.getuser()}"


def _passphrases(appointments: tuple[int, ...]) -> list[Custodian]:
    custodians = []
    for appointment in appointments:
        passphrase = click.prompt(f"custodian {appointment}: choose a passphrase to seal your share", hide_input=True,
                                  confirmation_prompt=True)
        custodians.append(Custodian(appointment, passphrase))
    return custodians


def _hand_over(key_name: str, generation: int, issued: list[IssuedShare], directory: Path) -> None:
    from smki.recovery import carrier

    for share in issued:
        path = carrier.write(directory, key_name, generation, share)
        click.echo(f"custodian {share.appointment_id} ({share.custodian_name}): share {share.share_index} -> {path}")


def _generation(instance: Instance, key_name: str) -> int:
    from smki.recovery.custody import status

    with instance.database.session() as session:
        now = status(session, key_name)
    assert now is not None
    return now.generation


@click.group("custody")
def custody() -> None:
    """The Recovery and Contingency keys held by Key Custodians (m of n shares)."""


@custody.command("status")
@click.argument("key", type=KEY, required=False)
def custody_status(key: str | None) -> None:
    """Each key's custody: generation, quorum and custodians."""
    from smki.recovery.custody import status

    instance = _instance()
    with instance.database.session() as session:
        for name in [key] if key else sorted(KEYS):
            now = status(session, name)
            if now is None:
                click.echo(f"{name}: not in custody")
                continue
            click.echo(f"{name}: generation {now.generation}, {now.threshold} of {now.share_count}")
            for appointment, person, party, state in now.custodians:
                click.echo(f"  custodian {appointment} ({person}, Party {party}): {state}")


@custody.command("init")
@click.argument("key", type=KEY)
@click.option("--custodian", "appointments", type=int, multiple=True, required=True,
              help="A Key Custodian's appointment number (repeat for each: custody.yaml's shares).")
@click.option("--shares-dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Where to write each custodian's sealed share file.")
@click.option("--officer", default=None, help="Who runs the ceremony (recorded in the audit log).")
def custody_init(key: str, appointments: tuple[int, ...], shares_dir: Path, officer: str | None) -> None:
    """Take the key `smki init` made into custody, split among the custodians."""
    from smki.recovery.intake import take_into_custody

    instance = _instance()
    try:
        issued = take_into_custody(instance, key, _passphrases(appointments), _actor(officer))
    except SmkiError as error:
        _fail(error)
    _hand_over(key, _generation(instance, key), issued, shares_dir)


@click.group("ceremony")
def ceremony() -> None:
    """Key ceremonies: a quorum of Key Custodians, under a decision of the SMKI PMA."""


@ceremony.command("decide")
@click.argument("key", type=KEY)
@click.option("--purpose", type=click.Choice(["use", "reshare", "new_key"]), required=True)
@click.option("--reason", required=True)
def ceremony_decide(key: str, purpose: str, reason: str) -> None:
    """Record the SMKI PMA's decision that KEY may be used (asks for a PMA member's API token)."""
    from smki.ra.service import RegistrationAuthority
    from smki.recovery.ceremony import record_decision

    instance = _instance()
    token = click.prompt("SMKI PMA member's API token", hide_input=True)
    try:
        principal = RegistrationAuthority(instance).authenticate_token(token)
        decision = record_decision(instance.database, principal, key_name=key, purpose=purpose, reason=reason)
    except SmkiError as error:
        _fail(error)
    click.echo(f"decision {decision}: the {key} key may be used to {purpose}")


@ceremony.command("run")
@click.argument("key", type=KEY)
@click.option("--decision", type=int, required=True, help="The SMKI PMA's decision number.")
@click.option("--share", "share_files", type=click.Path(path_type=Path, dir_okay=False), multiple=True,
              required=True, help="A custodian's share file (repeat; each custodian types their passphrase).")
@click.option("--custodian", "appointments", type=int, multiple=True,
              help="reshare / new_key: the new custodians' appointment numbers.")
@click.option("--shares-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="reshare / new_key: where to write the new share files.")
@click.option("--officer", default=None, help="Who runs the ceremony (recorded in the audit log).")
@click.option("--new-root", is_flag=True, help="new_key of the contingency key: then make a new Root OCA (and Issuing "
              "OCA) carrying the new key, wrapped under its new symmetric key.")
def ceremony_run(key: str, decision: int, share_files: tuple[Path, ...], appointments: tuple[int, ...],
                 shares_dir: Path | None, officer: str | None, new_root: bool) -> None:
    """One sitting of a key ceremony, opened and closed here."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from smki.recovery import carrier
    from smki.recovery.ceremony import CeremonySession

    instance, actor = _instance(), _actor(officer)
    try:
        session = CeremonySession.open(instance.database, instance.policies.custody, key_name=key,
                                       decision_id=decision, actor=actor)
    except SmkiError as error:
        _fail(error)
    click.echo(f"ceremony {session.id} open: {key}, to {session.purpose}; quorum {session.quorum}")
    if session.purpose != "use" and not (appointments and shares_dir):
        session.close(actor, "abandoned")
        _fail(SmkiError("RC:CER09", f"a {session.purpose} ceremony needs --custodian (each new custodian) and "
                        "--shares-dir."))
    outcome = "failed"
    try:
        for path in share_files:
            carried = carrier.read(path)
            passphrase = click.prompt(f"custodian {carried.appointment_id}: your passphrase", hide_input=True)
            try:
                count = session.present(carried.appointment_id, passphrase, carried.sealed)
                click.echo(f"  custodian {carried.appointment_id}: share accepted ({count} of {session.quorum})")
            except SmkiError as error:  # recorded; the sitting goes on with the other custodians
                click.echo(f"  custodian {carried.appointment_id}: refused {error.code}: {error.message}", err=True)
        if session.purpose == "use":
            with session.key(actor) as material:
                material.private_key.sign(b"smki ceremony proof", ec.ECDSA(hashes.SHA256()))
            click.echo(f"the {key} key was reconstructed and signed in memory; it is gone again")
        else:
            new_custodians = _passphrases(appointments)
            if session.purpose == "reshare":
                issued = session.reshare(new_custodians, actor)
            else:
                material, issued = session.new_key(new_custodians, actor, instance=instance)
                if session.certified is not None:
                    click.echo(f"the new Recovery key is certified: serial {session.certified.new_serial} "
                               f"(generation {session.certified.generation}) replaces {session.certified.old_serial}")
                elif key == "contingency" and new_root:
                    from smki.ca_rotation import new_root_oca

                    assert material.wrapping_key is not None
                    # after the custody commits: a crash in between leaves a key in custody that no root carries
                    # yet (a new new_key ceremony), never a root carrying a key nobody holds
                    rotated = new_root_oca(instance, actor=actor,
                                           contingency_public_key=material.private_key.public_key(),
                                           wrapping_key=material.wrapping_key)
                    click.echo(f"new Root OCA {rotated.root.new_serial} (generation {rotated.root.generation}) carries "
                               f"the new Contingency key; new Issuing OCA {rotated.issuing_oca.new_serial}. Devices "
                               "take it by mode 9, signed by the old Contingency key with the old symmetric key.")
                elif key == "contingency":
                    click.echo("the new Contingency key is in custody; devices use it only once a new Root OCA "
                               "carrying it reaches them (--new-root, then mode 9)")
            assert shares_dir is not None
            _hand_over(key, _generation(instance, key), issued, shares_dir)
        outcome = "completed"
    except SmkiError as error:
        _fail(error)
    finally:
        session.close(actor, outcome)


@ceremony.command("history")
@click.argument("key", type=KEY, required=False)
def ceremony_history(key: str | None) -> None:
    """Every ceremony, with its steps."""
    from smki.recovery.ceremony import ceremonies

    for row in ceremonies(_instance().database, key):
        click.echo(f"ceremony {row.id}: {row.purpose}, decision {row.decision_id}, {row.status} "
                   f"({row.outcome or 'in progress'}), opened {row.opened_at:%Y-%m-%d %H:%M} by {row.opened_by}")
        for step in row.steps:
            custodian = f" custodian {step['custodian']}" if "custodian" in step else ""
            click.echo(f"  {str(step.get('at', ''))[:19]} {step.get('step')}{custodian}")


@click.group("hierarchy")
def hierarchy() -> None:
    """The CA hierarchy's generations: rotate the Issuing OCA, revoke a CA certificate onto the ARL."""


@hierarchy.command("show")
def hierarchy_show() -> None:
    """Every generation of each CA certificate (and the Recovery certificate); the last is current."""
    from smki.ca.authority import CA_NAMES
    from smki.ca.identifiers import serial_hex

    current = _instance().hierarchy
    for name in (*CA_NAMES, "recovery"):
        for generation, certificate in zip(current.generations(name), current.certificates(name), strict=True):
            mark = "current" if generation == current.current(name) else "previous"
            click.echo(f"{name} g{generation.generation}: {serial_hex(certificate.serial_number)} {mark} "
                       f"({generation.certificate}, key {generation.key or 'in custody'})")


@hierarchy.command("rotate-issuing-oca")
@click.option("--officer", default=None, help="Who rotates it (recorded in the ledger).")
def hierarchy_rotate(officer: str | None) -> None:
    """A new Issuing OCA key and certificate, signed by the Root OCA; later Organisation Certificates use it."""
    from smki.ca_rotation import new_issuing_oca

    try:
        rotation = new_issuing_oca(_instance(), actor=_actor(officer))
    except SmkiError as error:
        _fail(error)
    click.echo(f"issuing_oca generation {rotation.generation}: {rotation.new_serial} (was {rotation.old_serial})")


@hierarchy.command("revoke")
@click.argument("name", type=click.Choice(["root_oca", "issuing_oca", "recovery"]))
@click.option("--serial", default=None, help="Which generation (default: the current one).")
@click.option("--reason", default="caCompromise", show_default=True)
@click.option("--officer", default=None, help="Who revokes it (recorded in the Repository).")
def hierarchy_revoke(name: str, serial: str | None, reason: str, officer: str | None) -> None:
    """Revoke a CA certificate and publish the ARL (the CRL for the Recovery certificate) at once."""
    from smki.recovery.revocation import revoke_ca_certificate

    try:
        published = revoke_ca_certificate(_instance(), name, reason=reason, actor=_actor(officer), serial=serial)
    except SmkiError as error:
        _fail(error)
    click.echo(f"{published.revocation_list} number {published.number} published with {published.entries} entries")


def register(main: click.Group) -> None:
    main.add_command(custody)
    main.add_command(ceremony)
    main.add_command(hierarchy)
