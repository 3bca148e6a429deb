"""A key in custody: its material sealed under a fresh key-encryption key (KEK), the KEK split m-of-n among
Key Custodians from at least two Parties, each share sealed under its custodian's passphrase and handed to
them, the custody keeping only a commitment to each share.

The KEK and the shares in clear never leave this process's memory; nothing here writes a file.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from smki.ca.keystore import private_key_from_material, private_key_material, seal_under_key
from smki.core.policyfiles.custody import CustodyPolicy
from smki.ra import audit, registry
from smki.recovery import shares as threshold
from smki.recovery.errors import CUSTODIANS, KEY_KIND, NO_CUSTODY, CustodyRefused
from smki.recovery.models import CustodianShare, Custody

CUSTODIAN_ROLE = "key_custodian"
# What each key's custody seals: the Contingency key travels with the symmetric key that wraps its public half.
KEYS: dict[str, tuple[str, ...]] = {"recovery": ("private_key",), "contingency": ("private_key", "wrapping_key")}


@dataclass(frozen=True)
class Custodian:
    """A custodian taking a share: their RA appointment, and the passphrase that will seal it."""

    appointment_id: int
    passphrase: str

    def __repr__(self) -> str:
        return f"Custodian(appointment_id={self.appointment_id}, passphrase=<hidden>)"


@dataclass(frozen=True)
class IssuedShare:
    """A sealed share for its custodian to carry (shown once; the custody keeps only its commitment)."""

    appointment_id: int
    custodian_name: str
    share_index: int
    sealed: bytes


@dataclass(frozen=True)
class KeyMaterial:
    """A key in clear, in memory, for one ceremony."""

    key_name: str
    private_key: ec.EllipticCurvePrivateKey
    wrapping_key: bytes | None = None  # the Contingency key's symmetric key

    def sealed_items(self) -> dict[str, bytes]:
        items = {"private_key": private_key_material(self.private_key)}
        if self.wrapping_key is not None:
            items["wrapping_key"] = self.wrapping_key
        return items

    @classmethod
    def from_items(cls, key_name: str, items: dict[str, bytes]) -> KeyMaterial:
        return cls(key_name, private_key_from_material(items["private_key"]), items.get("wrapping_key"))

    def __repr__(self) -> str:
        return f"KeyMaterial({self.key_name}, <private>)"


def binding(custody_id: int, appointment_id: int) -> str:
    """What a sealed share is bound to: one custody, one custodian."""
    return f"smki-custody:{custody_id}:{appointment_id}"


def item_label(key_name: str, generation: int, item: str) -> str:
    return f"{key_name}-{generation}-{item}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_key_name(key_name: str) -> None:
    if key_name not in KEYS:
        raise CustodyRefused(KEY_KIND, f"custody holds the {' and '.join(KEYS)} keys, not {key_name!r}.",
                             field="key")


def active_custody(session: Session, key_name: str) -> Custody | None:
    return session.execute(select(Custody).where(Custody.key_name == key_name, Custody.status == "active")
                           ).scalar_one_or_none()


def require_custody(session: Session, key_name: str) -> Custody:
    check_key_name(key_name)
    custody = active_custody(session, key_name)
    if custody is None:
        raise CustodyRefused(NO_CUSTODY, f"the {key_name} key is not in custody; run 'smki custody init' first.")
    return custody


def check_custodians(session: Session, policy: CustodyPolicy,
                     custodians: Sequence[Custodian]) -> dict[int, tuple[int, str]]:
    """Every custodian an active Key Custodian appointment, as many as the policy's shares, from enough
    Parties, each with a passphrase long enough; appointment -> (Party, name). Refuses naming every problem."""
    problems: list[str] = []
    ids = [c.appointment_id for c in custodians]
    if len(set(ids)) != len(ids):
        problems.append("a custodian is named twice")
    if len(set(ids)) != policy.shares:
        problems.append(f"custody.yaml splits a key among {policy.shares} custodians; {len(set(ids))} were named")
    found: dict[int, tuple[int, str]] = {}
    for custodian in custodians:
        appointment = registry.appointment(session, custodian.appointment_id)
        if appointment is None or appointment.role != CUSTODIAN_ROLE or appointment.status != "approved" \
                or appointment.organisation_id is None:
            problems.append(f"appointment {custodian.appointment_id} is not an active Key Custodian (nominate "
                            "one on the Key Custodian Nomination form)")
            continue
        if len(custodian.passphrase) < policy.passphrase_min_length:
            problems.append(f"the passphrase of custodian {custodian.appointment_id} is shorter than "
                            f"{policy.passphrase_min_length} characters")
        found[custodian.appointment_id] = (appointment.organisation_id, f"person:{appointment.person_id}")
    parties = {party for party, _ in found.values()}
    if found and len(parties) < policy.minimum_organisations:
        problems.append(f"the custodians come from {len(parties)} Part{'y' if len(parties) == 1 else 'ies'}; "
                        f"custody.yaml requires at least {policy.minimum_organisations}")
    if problems:
        raise CustodyRefused(CUSTODIANS, "these custodians cannot hold the key: " + "; ".join(problems) + ".",
                             field="custodians")
    return found


def establish(session: Session, policy: CustodyPolicy, material: KeyMaterial, custodians: Sequence[Custodian],
              *, actor: str, reason: str) -> list[IssuedShare]:
    """Put ``material`` into a new custody generation (retiring the active one), inside ``session``'s unit
    of work, audited first. Returns each custodian's sealed share, to hand over once."""
    check_key_name(material.key_name)
    names = check_custodians(session, policy, custodians)
    previous = active_custody(session, material.key_name)
    generation = (previous.generation + 1) if previous else 1
    audit.append(session, actor=actor, action="custody.established", subject=f"{material.key_name}:{generation}",
                 detail={"reason": reason, "threshold": policy.threshold, "shares": policy.shares,
                         "custodians": sorted(names), "parties": sorted({p for p, _ in names.values()})})
    if previous is not None:
        previous.status, previous.retired_at = "retired", _now()
        session.flush()  # one active custody per key at any moment
    kek = threshold.new_kek()
    sealed = {item: base64.b64encode(seal_under_key(kek, item_label(material.key_name, generation, item), value)
                                     ).decode() for item, value in material.sealed_items().items()}
    public = material.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    custody = Custody(key_name=material.key_name, generation=generation, status="active",
                      threshold=policy.threshold, share_count=policy.shares, sealed=sealed,
                      public_key=public.decode(), created_at=_now())
    session.add(custody)
    session.flush()
    issued = []
    for custodian, share in zip(custodians, threshold.split(kek, policy.threshold, policy.shares), strict=True):
        bound = binding(custody.id, custodian.appointment_id)
        organisation_id, name = names[custodian.appointment_id]
        session.add(CustodianShare(custody_id=custody.id, appointment_id=custodian.appointment_id,
                                   organisation_id=organisation_id, custodian_name=name, share_index=share.index,
                                   commitment=threshold.commitment(bound, share)))
        issued.append(IssuedShare(custodian.appointment_id, name, share.index,
                                  threshold.seal(share, custodian.passphrase, bound)))
    session.flush()
    return issued


def new_key_material(key_name: str) -> KeyMaterial:
    """A new Recovery or Contingency key (and, for the Contingency key, a new symmetric wrapping key)."""
    import secrets

    check_key_name(key_name)
    return KeyMaterial(key_name, ec.generate_private_key(ec.SECP256R1()),
                       secrets.token_bytes(32) if key_name == "contingency" else None)


@dataclass(frozen=True)
class CustodyStatus:
    key_name: str
    generation: int
    threshold: int
    share_count: int
    custodians: list[tuple[int, str, int, str]]  # appointment, name, Party, appointment status
    public_key: str


def status(session: Session, key_name: str) -> CustodyStatus | None:
    check_key_name(key_name)
    custody = active_custody(session, key_name)
    if custody is None:
        return None
    rows = session.execute(select(CustodianShare).where(CustodianShare.custody_id == custody.id)
                           .order_by(CustodianShare.share_index)).scalars()
    custodians = []
    for row in rows:
        appointment = registry.appointment(session, row.appointment_id)
        custodians.append((row.appointment_id, row.custodian_name, row.organisation_id,
                           appointment.status if appointment else "unknown"))
    return CustodyStatus(key_name, custody.generation, custody.threshold, custody.share_count, custodians,
                         custody.public_key)
