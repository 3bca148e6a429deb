"""Taking the keys ``smki init`` made into custody, without touching the hierarchy: the Recovery key and the
Contingency key with its symmetric wrapping key are read from the instance's key stores and sealed into a
custody generation; the certificates (the Recovery certificate, the Root OCA with its wrapped Contingency
key) stay exactly as they are, because the keys do.

Once in custody a key is no longer in the key stores: a key usable without a quorum would make the custody
pointless. Removal is part of the one decision. Before the custody commits, the key store files are set aside
(renamed: no signer finds them); if the commit fails they are put back; once it has committed they are
destroyed. A process that dies between those steps is finished by :func:`finish_custody` (run first by every
``smki custody`` and ``smki ceremony`` command, and by :func:`take_into_custody`): a key in custody loses any
copy still in a key store, a key not in custody gets back what was set aside.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY
from smki.ca.keystore import FileKeyStore, KeyStore
from smki.instance import Instance
from smki.ra import audit
from smki.recovery.custody import (
    KEYS,
    Custodian,
    IssuedShare,
    KeyMaterial,
    active_custody,
    check_key_name,
    establish,
)
from smki.recovery.errors import CUSTODY_EXISTS, CustodyRefused

CLEARED = "custody.key_store_cleared"


def key_material(instance: Instance, key_name: str) -> KeyMaterial:
    """The key ``smki init`` made, as it is in the instance's key stores."""
    check_key_name(key_name)
    if key_name == "recovery":
        return KeyMaterial(key_name, instance.keystore.signer(RECOVERY_KEY))
    return KeyMaterial(key_name, instance.keystore.signer(CONTINGENCY_KEY),
                       instance.custody.get_secret(CONTINGENCY_WRAPPING_KEY))


def held(instance: Instance, key_name: str) -> list[tuple[KeyStore, str]]:
    """Where ``smki init`` put the key's parts: (store, label)."""
    check_key_name(key_name)
    if key_name == "recovery":
        return [(instance.keystore, RECOVERY_KEY)]
    return [(instance.keystore, CONTINGENCY_KEY), (instance.custody, CONTINGENCY_WRAPPING_KEY)]


def _set_aside(parts: list[tuple[KeyStore, str]]) -> None:
    for store, label in parts:
        if isinstance(store, FileKeyStore):
            store.set_aside(label)


def _put_back(parts: list[tuple[KeyStore, str]]) -> None:
    for store, label in parts:
        if isinstance(store, FileKeyStore):
            store.put_back(label)


def _destroy(parts: list[tuple[KeyStore, str]]) -> None:
    for store, label in parts:
        store.destroy(label)


def take_into_custody(instance: Instance, key_name: str, custodians: Sequence[Custodian],
                      actor: str) -> list[IssuedShare]:
    """Seal the instance's ``key_name`` key into its first custody (RC:CUS02 if it is in custody already) and
    remove it from the key stores, in one decision."""
    finish_custody(instance, key_name)
    parts = held(instance, key_name)

    def refuse_if_held(session: Session) -> None:
        if active_custody(session, key_name) is not None:
            raise CustodyRefused(CUSTODY_EXISTS, f"the {key_name} key is in custody already; a custodian leaving "
                                 "is a re-sharing ceremony, a new key a new key ceremony.")
    with instance.database.session() as session:
        refuse_if_held(session)  # before reading the key store, which no longer holds a key in custody
    material = key_material(instance, key_name)

    def work(session: Session) -> list[IssuedShare]:
        refuse_if_held(session)
        issued = establish(session, instance.policies.custody, material, custodians, actor=actor,
                           reason="taken into custody from the instance's key store")
        audit.append(session, actor=actor, action=CLEARED, subject=key_name,
                     detail={"labels": [label for _, label in parts]})
        _set_aside(parts)  # the last step before the commit: a failure here rolls the custody back
        return issued
    try:
        issued = audit.audited(instance.database, work)
    except BaseException:
        _put_back(parts)
        raise
    _destroy(parts)
    return issued


def finish_custody(instance: Instance, key_name: str | None = None) -> dict[str, str]:
    """Settle what a process that died part-way through :func:`take_into_custody` left (idempotent): a key in
    custody has every key store copy destroyed; a key not in custody gets back what was set aside. Returns
    what was done, by key ("destroyed", "put back"); nothing for a key already settled."""
    done: dict[str, str] = {}
    for name in [key_name] if key_name else sorted(KEYS):
        parts = held(instance, name)
        with instance.database.session() as session:
            in_custody = active_custody(session, name) is not None
        if in_custody:
            present = [label for store, label in parts if _present(store, label) or _aside(store, label)]
            if present:
                _destroy(parts)
                audit.record(instance.database, actor="custody-finisher", action=CLEARED, subject=name,
                             detail={"labels": present, "finished": True})
                done[name] = "destroyed"
        elif any(_aside(store, label) for store, label in parts):
            _put_back(parts)
            done[name] = "put back"
        if in_custody and name == "recovery" and _adopt_certified(instance):
            done["recovery certificate"] = "switched"
    return done


def _adopt_certified(instance: Instance) -> bool:
    """A new_key ceremony that died between its commit and the switch of the Recovery certificate: the key in
    custody is certified in the ledger but the hierarchy still names the old one. Switch to it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from sqlalchemy import select

    from smki.ca_rotation import adopt_recovery_certificate
    from smki.models import IssuanceRecord

    with instance.database.session() as session:
        custody = active_custody(session, "recovery")
        assert custody is not None
        in_custody = load_pem_public_key(custody.public_key.encode())
        if instance.hierarchy.certificate("recovery").public_key() == in_custody:
            return False
        entity = instance.policies.environment.dcc_entity_identifiers["recovery"].hex
        ders = session.execute(select(IssuanceRecord.certificate_der).where(
            IssuanceRecord.profile == "organisation", IssuanceRecord.subject_id == entity)
            .order_by(IssuanceRecord.issued_at.desc())).scalars().all()
    for der in ders:
        certificate = x509.load_der_x509_certificate(der)
        if certificate.public_key() == in_custody:
            return adopt_recovery_certificate(instance, certificate) is not None
    return False


def _present(store: KeyStore, label: str) -> bool:
    return store.holds(label) if isinstance(store, FileKeyStore) else store.has(label)


def _aside(store: KeyStore, label: str) -> bool:
    return isinstance(store, FileKeyStore) and label in store.set_aside_labels()
