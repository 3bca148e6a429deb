"""A key in custody is no longer in the key stores, taken out in the same decision that puts it in custody; a
process that died part-way is finished either way. A new key ceremony certifies a new Recovery key, and takes
a new Root OCA's Contingency key into custody."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from repository.store import CertificateRepository
from smki import ca_rotation
from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.ca.identifiers import serial_hex
from smki.ca.keystore import FileKeyStore
from smki.core.errors import ConfigurationError
from smki.instance import Instance
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.models import AuditRecord
from smki.ra.service import RegistrationAuthority
from smki.recovery import ceremony as ceremonies
from smki.recovery import intake
from smki.recovery.custody import IssuedShare, KeyMaterial, status
from smki.recovery.intake import finish_custody, take_into_custody
from tests.recovery.conftest import PASSPHRASES, Custodians
from tests.recovery.test_ceremony import ACTOR, opened, refused


def stores_hold(instance: Instance) -> dict[str, bool]:
    keystore, custody = instance.keystore, instance.custody
    assert isinstance(keystore, FileKeyStore) and isinstance(custody, FileKeyStore)
    return {RECOVERY_KEY: keystore.holds(RECOVERY_KEY), CONTINGENCY_KEY: keystore.holds(CONTINGENCY_KEY),
            CONTINGENCY_WRAPPING_KEY: custody.holds(CONTINGENCY_WRAPPING_KEY)}


def restarted(instance: Instance) -> Instance:
    return Instance(instance.settings)


def audited_actions(instance: Instance) -> list[tuple[str, dict[str, object]]]:
    with instance.database.session() as session:
        return [(r.action, json.loads(r.detail)) for r in
                session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars()]


def test_a_key_in_custody_is_no_longer_in_the_key_stores(ra: RegistrationAuthority, custodians: Custodians) -> None:
    instance = ra.instance
    assert stores_hold(instance) == dict.fromkeys(stores_hold(instance), True)
    take_into_custody(instance, "recovery", custodians.all(), ACTOR)
    take_into_custody(instance, "contingency", custodians.all(), ACTOR)
    assert stores_hold(instance) == dict.fromkeys(stores_hold(instance), False)
    assert not list(instance.settings.keystore_dir.glob("*.withdrawn"))
    # neither this process (whose store had the key cached) nor a restarted one can sign with it
    for fresh in (instance, restarted(instance)):
        with pytest.raises(ConfigurationError, match="CA:KEY1"):
            fresh.keystore.signer(RECOVERY_KEY)
        with pytest.raises(ConfigurationError, match="CA:KEY4"):
            fresh.custody.get_secret(CONTINGENCY_WRAPPING_KEY)
    assert [a for a, _ in audited_actions(instance)].count(intake.CLEARED) == 2
    # the CA's own keys are untouched: the hierarchy still issues
    assert instance.keystore.has("issuing-oca") and instance.keystore.has("root-oca")
    assert finish_custody(instance) == {}  # nothing left to finish


def test_a_custody_that_does_not_commit_puts_the_key_back(ra: RegistrationAuthority, custodians: Custodians,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    instance = ra.instance
    original = instance.keystore.signer(RECOVERY_KEY).public_key()
    set_aside = FileKeyStore.set_aside

    def aside_then_fail(self: FileKeyStore, label: str) -> bool:
        set_aside(self, label)
        raise OSError("disk full")
    monkeypatch.setattr(FileKeyStore, "set_aside", aside_then_fail)
    with pytest.raises(OSError):
        take_into_custody(instance, "recovery", custodians.all(), ACTOR)
    monkeypatch.undo()
    with instance.database.session() as session:
        assert status(session, "recovery") is None  # the custody was rolled back whole
    assert restarted(instance).keystore.signer(RECOVERY_KEY).public_key() == original


def test_a_process_that_died_before_the_commit_gets_its_key_back(ra: RegistrationAuthority) -> None:
    instance = ra.instance
    original = instance.keystore.signer(CONTINGENCY_KEY).public_key()
    wrapping = instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY)
    # what a process leaves that died after setting the key aside and before its custody committed
    instance.keystore.set_aside(CONTINGENCY_KEY)  # type: ignore[attr-defined]
    instance.custody.set_aside(CONTINGENCY_WRAPPING_KEY)  # type: ignore[attr-defined]
    assert not instance.keystore.has(CONTINGENCY_KEY)

    later = restarted(instance)
    assert finish_custody(later) == {"contingency": "put back"}
    assert later.keystore.signer(CONTINGENCY_KEY).public_key() == original
    assert later.custody.get_secret(CONTINGENCY_WRAPPING_KEY) == wrapping
    assert finish_custody(later) == {}


def test_a_process_that_died_after_the_commit_is_finished_by_destroying_the_key(
        ra: RegistrationAuthority, custodians: Custodians, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = ra.instance
    monkeypatch.setattr(intake, "_destroy", lambda _parts: None)  # the process dies right after its commit
    take_into_custody(instance, "contingency", custodians.all(), ACTOR)
    monkeypatch.undo()
    assert not stores_hold(instance)[CONTINGENCY_KEY]  # set aside: already unusable
    assert list(instance.settings.keystore_dir.glob(f"{CONTINGENCY_KEY}.*.withdrawn"))

    later = restarted(instance)
    assert finish_custody(later) == {"contingency": "destroyed"}
    assert finish_custody(later) == {}  # idempotent
    assert not list(instance.settings.keystore_dir.glob(f"{CONTINGENCY_KEY}*"))
    assert not list((instance.settings.instance_dir / "custody").glob(f"{CONTINGENCY_WRAPPING_KEY}*"))
    finished = [d for a, d in audited_actions(later) if a == intake.CLEARED and d.get("finished")]
    assert finished == [{"labels": [CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY], "finished": True}]
    assert audit.verify(later.database).intact


def new_key_ceremony(ra: RegistrationAuthority, custodians: Custodians, issued: list[IssuedShare],
                     key: str) -> ceremonies.CeremonySession:
    session = opened(ra, custodians, key=key, purpose="new_key")
    for n in (0, 2, 4):
        session.present(issued[n].appointment_id, PASSPHRASES[n], issued[n].sealed)
    return session


def test_a_new_recovery_key_is_certified_at_its_ceremony(ra: RegistrationAuthority, custodians: Custodians) -> None:
    instance = ra.instance
    old = instance.hierarchy.certificate("recovery")
    issued = take_into_custody(instance, "recovery", custodians.all(), ACTOR)
    session = new_key_ceremony(ra, custodians, issued, "recovery")

    material, _shares = session.new_key(custodians.all(), ACTOR, instance=instance)
    session.close(ACTOR)

    certified = session.certified
    assert certified is not None and certified.old_serial == serial_hex(old.serial_number)
    current = restarted(instance).hierarchy.certificate("recovery")
    assert current.public_key() == material.private_key.public_key() != old.public_key()
    assert serial_hex(current.serial_number) == certified.new_serial
    current.verify_directly_issued_by(instance.hierarchy.certificate("issuing_oca"))
    with instance.database.session() as db:
        assert db.execute(select(IssuanceRecord.channel).where(IssuanceRecord.serial == certified.new_serial)
                          ).scalar_one() == ca_rotation.CHANNEL
    assert CertificateRepository(instance.database).get(certified.new_serial) is not None
    records = [d for a, d in audited_actions(instance) if a == "ceremony.key_certified"]
    assert records == [{"serial": certified.new_serial, "replaces": certified.old_serial, "generation": 2}]
    assert not instance.keystore.has(RECOVERY_KEY) and instance.hierarchy.current("recovery").key is None
    assert audit.verify(instance.database).intact


def test_a_new_recovery_key_needs_the_instance_to_certify_it(ra: RegistrationAuthority,
                                                             custodians: Custodians) -> None:
    issued = take_into_custody(ra.instance, "recovery", custodians.all(), ACTOR)
    session = new_key_ceremony(ra, custodians, issued, "recovery")
    with refused(ceremonies.UNCERTIFIED):
        session.new_key(custodians.all(), ACTOR)
    with ra.database.session() as db:
        assert status(db, "recovery").generation == 1  # type: ignore[union-attr]


def test_a_ceremony_that_died_before_the_switch_is_finished(ra: RegistrationAuthority, custodians: Custodians,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    instance = ra.instance
    old = instance.hierarchy.certificate("recovery")
    issued = take_into_custody(instance, "recovery", custodians.all(), ACTOR)
    session = new_key_ceremony(ra, custodians, issued, "recovery")
    monkeypatch.setattr(ca_rotation.PreparedRecovery, "switch", lambda self: self.rotation)  # dies before it
    material, _ = session.new_key(custodians.all(), ACTOR, instance=instance)
    monkeypatch.undo()
    later = restarted(instance)
    assert later.hierarchy.certificate("recovery") == old  # committed, not yet switched

    assert finish_custody(later) == {"recovery certificate": "switched"}
    assert restarted(instance).hierarchy.certificate("recovery").public_key() == material.private_key.public_key()
    assert finish_custody(later) == {}


def test_a_new_root_oca_s_contingency_key_is_taken_into_custody(ra: RegistrationAuthority,
                                                                custodians: Custodians) -> None:
    instance = ra.instance
    issued = take_into_custody(instance, "contingency", custodians.all(), ACTOR)
    rotated = ca_rotation.new_root_oca(instance, actor=ACTOR)

    wrong = opened(ra, custodians, key="contingency", purpose="new_key")
    with refused(ceremonies.NOT_IN_ROOT):  # a key no root carries is refused before anything is done
        wrong.new_key(custodians.all(), ACTOR, instance=instance,
                      material=KeyMaterial("contingency", ec.generate_private_key(ec.SECP256R1()), bytes(32)))
    wrong.close(ACTOR, "abandoned")

    session = new_key_ceremony(ra, custodians, issued, "contingency")
    material, _ = session.new_key(custodians.all(), ACTOR, instance=instance, material=rotated.contingency)
    session.close(ACTOR)
    assert material.wrapping_key == rotated.contingency.wrapping_key
    with ra.database.session() as db:
        now = status(db, "contingency")
    assert now is not None and now.generation == 2
    assert now.public_key == rotated.contingency.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert not instance.keystore.has(CONTINGENCY_KEY)
