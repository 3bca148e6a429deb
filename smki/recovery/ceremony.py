"""A key ceremony: a recorded session in which Key Custodians present their shares and, with a quorum, a
key in custody is reconstructed in this process's memory for that ceremony only.

The SMKI PMA's decision comes first (:func:`record_decision`); a ceremony consumes exactly one decision, for
the key and the purpose it names: ``use`` (sign with the Recovery key, release the Contingency key and its
symmetric key), ``reshare`` (a custodian leaves: the same key under new shares) or ``new_key`` (a new
Recovery or Contingency key, under new shares). Every step, and every refusal, is a record in the RA's
hash-chained audit log; a step and its record commit together or not at all.

The shares and the KEK live in a :class:`CeremonySession` object, never in the database or a file: a
ceremony is one sitting of one process (the custodians present in turn at one terminal). If that process
ends, the shares are gone and a new ceremony, under a new decision, is needed.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smki.ca.contingency import unwrap_contingency_key
from smki.ca.keystore import open_under_key
from smki.ca_rotation import ContingencyMaterial, PreparedRecovery, Rotation, prepare_recovery_certificate
from smki.core.db import Database
from smki.core.errors import ConfigurationError
from smki.core.policyfiles.custody import CustodyPolicy
from smki.instance import Instance
from smki.ra import audit, registry
from smki.ra.identity import Principal
from smki.recovery import shares as threshold
from smki.recovery.custody import (
    CUSTODIAN_ROLE,
    Custodian,
    IssuedShare,
    KeyMaterial,
    binding,
    check_key_name,
    establish,
    item_label,
    new_key_material,
    require_custody,
)
from smki.recovery.errors import (
    FORGED,
    NO_DECISION,
    NOT_CUSTODIAN,
    NOT_OPEN,
    NOT_PMA,
    PRESENTED_TWICE,
    TOO_FEW,
    UNKNOWN_CEREMONY,
    UNOPENABLE,
    WRONG_KIND,
    CustodyRefused,
)
from smki.recovery.models import Ceremony, CustodianShare, Custody, PmaDecision, Presentation

PURPOSES = ("use", "reshare", "new_key")
NOT_IN_ROOT = "RC:CER10"      # the Contingency key given is not the one the current Root OCA carries
UNCERTIFIED = "RC:CER11"      # a new Recovery key is certified at its ceremony: the instance is needed
T = TypeVar("T")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _refusals_recorded(database: Database, actor: str, subject: str, work: Callable[[Session], T]) -> T:
    """Run ``work`` as one audited unit; a refusal rolls the unit back and is then recorded on its own, so
    the log shows every attempt, failed ones too."""
    try:
        return audit.audited(database, work)
    except CustodyRefused as refusal:
        audit.record(database, actor=actor, action="ceremony.refused", subject=subject,
                     detail={"code": refusal.code, "reason": refusal.message})
        raise


def record_decision(database: Database, principal: Principal, *, key_name: str, purpose: str, reason: str) -> int:
    """The SMKI PMA decides that ``key_name`` may be used for ``purpose``; returns the decision's number."""
    check_key_name(key_name)
    if principal.holds("pma") is None:
        raise CustodyRefused(NOT_PMA, "only a member of the SMKI PMA may decide that a Recovery or Contingency "
                             "key is used.")
    if purpose not in PURPOSES:
        raise CustodyRefused(WRONG_KIND, f"a decision is for one of {', '.join(PURPOSES)}, not {purpose!r}.",
                             field="purpose")

    def work(session: Session) -> int:
        audit.append(session, actor=principal.label, action="pma.decided", subject=f"{key_name}:{purpose}",
                     detail={"reason": reason})
        decision = PmaDecision(key_name=key_name, purpose=purpose, reason=reason, decided_by=principal.label,
                               decided_at=_now())
        session.add(decision)
        session.flush()
        return decision.id
    return audit.audited(database, work)


class CeremonySession:
    """One open ceremony in this process: the shares presented so far, in memory only."""

    def __init__(self, database: Database, policy: CustodyPolicy, ceremony_id: int, custody_id: int,
                 key_name: str, purpose: str, quorum: int, generation: int) -> None:
        self.database, self.policy = database, policy
        self.id, self.custody_id, self.key_name, self.purpose = ceremony_id, custody_id, key_name, purpose
        self.quorum, self.generation = quorum, generation
        self._shares: dict[int, threshold.Share] = {}  # appointment -> share
        self.closed = False
        self.certified: Rotation | None = None  # the new Recovery certificate of a new_key ceremony

    @property
    def subject(self) -> str:
        return f"ceremony:{self.id}"

    @property
    def presented(self) -> int:
        return len(self._shares)

    @classmethod
    def open(cls, database: Database, policy: CustodyPolicy, *, key_name: str, decision_id: int | None,
             actor: str) -> CeremonySession:
        """Open a ceremony under the PMA's decision ``decision_id`` (RC:CER01 without one, for this key,
        unused)."""
        check_key_name(key_name)

        def work(session: Session) -> CeremonySession:
            decision = session.get(PmaDecision, decision_id) if decision_id is not None else None
            if decision is None or decision.key_name != key_name or decision.ceremony_id is not None:
                raise CustodyRefused(NO_DECISION, f"no unused decision of the SMKI PMA that the {key_name} key may "
                                     "be used; the PMA records one first (smki ceremony decide).", field="decision")
            custody = require_custody(session, key_name)
            audit.append(session, actor=actor, action="ceremony.opened", subject=f"{key_name}:{decision.purpose}",
                         detail={"decision": decision.id, "custody": custody.id, "generation": custody.generation,
                                 "quorum": custody.threshold})
            ceremony = Ceremony(custody_id=custody.id, decision_id=decision.id, purpose=decision.purpose,
                                status="open", opened_by=actor, opened_at=_now(), steps=[])
            session.add(ceremony)
            session.flush()
            decision.ceremony_id = ceremony.id
            return cls(database, policy, ceremony.id, custody.id, key_name, decision.purpose, custody.threshold,
                       custody.generation)
        return _refusals_recorded(database, actor, f"{key_name}:open", work)

    def _open_row(self, session: Session) -> Ceremony:
        ceremony = session.get(Ceremony, self.id)
        if ceremony is None:
            raise CustodyRefused(UNKNOWN_CEREMONY, f"there is no ceremony {self.id}.")
        if ceremony.status != "open" or self.closed:
            raise CustodyRefused(NOT_OPEN, f"ceremony {self.id} is {ceremony.status}; open a new one.")
        return ceremony

    def present(self, appointment_id: int, passphrase: str, sealed: bytes) -> int:
        """A custodian presents their sealed share and passphrase; returns how many shares are now present.
        Refused: not a custodian of this custody or withdrawn (RC:CER03), presented already (RC:CER04), does not
        open (RC:CER05), opens but is not the share they were given (RC:CER06)."""
        actor = f"custodian:{appointment_id}"

        def work(session: Session) -> int:
            ceremony = self._open_row(session)
            row = session.execute(select(CustodianShare).where(
                CustodianShare.custody_id == self.custody_id,
                CustodianShare.appointment_id == appointment_id)).scalar_one_or_none()
            appointment = registry.appointment(session, appointment_id)
            if row is None or appointment is None or appointment.role != CUSTODIAN_ROLE:
                raise CustodyRefused(NOT_CUSTODIAN, f"appointment {appointment_id} holds no share of the "
                                     f"{self.key_name} key.", field="custodian")
            if appointment.status != "approved":
                raise CustodyRefused(NOT_CUSTODIAN, f"custodian {appointment_id} is {appointment.status}: their "
                                     "share no longer counts; re-share the key among the remaining custodians.",
                                     field="custodian")
            if appointment_id in self._shares or session.execute(select(Presentation.id).where(
                    Presentation.ceremony_id == self.id, Presentation.share_id == row.id)).first():
                raise CustodyRefused(PRESENTED_TWICE, f"custodian {appointment_id}'s share was already presented "
                                     f"at ceremony {self.id}; a quorum needs {self.quorum} different custodians.",
                                     field="share")
            bound = binding(self.custody_id, appointment_id)
            try:
                share = threshold.open_sealed(sealed, passphrase, bound)
            except threshold.ShareUnopenable:
                raise CustodyRefused(UNOPENABLE, f"the share does not open: the passphrase is wrong, or it is not "
                                     f"custodian {appointment_id}'s share of this custody.", field="share") from None
            if share.index != row.share_index or threshold.commitment(bound, share) != row.commitment:
                raise CustodyRefused(FORGED, f"the share presented for custodian {appointment_id} is not the share "
                                     "they were given (forged or altered); report it to the SMKI PMA.",
                                     field="share")
            audit.append(session, actor=actor, action="ceremony.share_presented", subject=self.subject,
                         detail={"custodian": appointment_id, "party": row.organisation_id,
                                 "share_index": row.share_index})
            session.add(Presentation(ceremony_id=self.id, share_id=row.id, presented_at=_now()))
            ceremony.steps = [*ceremony.steps, {"at": _now().isoformat(), "step": "share_presented",
                                                "custodian": appointment_id}]
            try:
                session.flush()
            except IntegrityError:  # another process presented the same share at this ceremony meanwhile
                raise CustodyRefused(PRESENTED_TWICE, f"custodian {appointment_id}'s share was already presented "
                                     f"at ceremony {self.id}.", field="share") from None
            self._shares[appointment_id] = share
            return len(self._shares)
        return _refusals_recorded(self.database, actor, self.subject, work)

    def _reconstruct(self, session: Session, custody: Custody) -> KeyMaterial:
        if len(self._shares) < self.quorum:
            raise CustodyRefused(TOO_FEW, f"{len(self._shares)} of the {self.quorum} shares the quorum needs have "
                                 f"been presented; {self.quorum - len(self._shares)} more custodian(s) must present.")
        kek = threshold.combine(list(self._shares.values()))
        try:
            items = {item: open_under_key(kek, item_label(self.key_name, custody.generation, item),
                                          base64.b64decode(value)) for item, value in custody.sealed.items()}
        except ConfigurationError:
            raise CustodyRefused(FORGED, "the shares presented do not reconstruct the key in custody.") from None
        return KeyMaterial.from_items(self.key_name, items)

    def _step(self, action: str, actor: str, detail: dict[str, Any],
              then: Callable[[Session, KeyMaterial], T], purpose: str) -> T:
        def work(session: Session) -> T:
            ceremony = self._open_row(session)
            if ceremony.purpose != purpose:
                raise CustodyRefused(WRONG_KIND, f"ceremony {self.id} was opened to {ceremony.purpose}, not to "
                                     f"{purpose}.")
            custody = session.get(Custody, self.custody_id)
            assert custody is not None
            material = self._reconstruct(session, custody)
            audit.append(session, actor=actor, action=action, subject=self.subject,
                         detail={**detail, "custodians": sorted(self._shares)})
            ceremony.steps = [*ceremony.steps, {"at": _now().isoformat(), "step": action.split(".", 1)[1]}]
            return then(session, material)
        return _refusals_recorded(self.database, actor, self.subject, work)

    @contextmanager
    def key(self, actor: str) -> Iterator[KeyMaterial]:
        """The key in clear, for a ``use`` ceremony, only inside this ``with`` block (RC:CER02 short of a
        quorum). The reconstruction is recorded before the key is handed out."""
        material = self._step("ceremony.key_reconstructed", actor, {}, lambda _session, m: m, "use")
        try:
            yield material
        finally:
            del material
            self.forget()

    def reshare(self, custodians: Sequence[Custodian], actor: str) -> list[IssuedShare]:
        """The same key under new shares for ``custodians`` (a custodian left); the old shares stop counting."""
        def then(session: Session, material: KeyMaterial) -> list[IssuedShare]:
            return establish(session, self.policy, material, custodians, actor=actor,
                             reason=f"re-shared at {self.subject}")
        issued = self._step("ceremony.reshared", actor, {}, then, "reshare")
        self.forget()
        return issued

    def new_key(self, custodians: Sequence[Custodian], actor: str, *, instance: Instance | None = None,
                material: KeyMaterial | ContingencyMaterial | None = None) -> tuple[KeyMaterial, list[IssuedShare]]:
        """A new key of the same kind, in a new custody; returns it and its new shares. A quorum of the old
        custody must be present: a new Recovery or Contingency key is a decision of the custodians too.

        Recovery: the new key is certified in the same unit of work (``instance`` is needed, RC:CER11): the
        ledger row, the Repository's record and the audit record naming the new serial commit with the new
        custody, and the hierarchy's Recovery certificate switches right after (``self.certified``). If the
        process dies in between, :func:`smki.recovery.intake.finish_custody` switches it.

        Contingency: ``material`` is the key pair and wrapping key a new Root OCA already carries
        (``smki.ca_rotation.new_root_oca``; checked against the current Root OCA when ``instance`` is given,
        RC:CER10). Without it a new pair is made here, and devices can use it only once a new Root OCA
        carrying it (``new_root_oca(contingency_public_key=..., wrapping_key=...)``) reaches them by mode 9."""
        if not self.policy.new_keys_in_custody:
            raise CustodyRefused(WRONG_KIND, "custody.yaml sets new_keys_in_custody: false; no key is made here.")
        if isinstance(material, ContingencyMaterial):
            if material.private_key is None:
                raise CustodyRefused(WRONG_KIND, "the Contingency material has no private key to take into custody.")
            material = KeyMaterial("contingency", material.private_key, material.wrapping_key)
        if material is not None and material.key_name != self.key_name:
            raise CustodyRefused(WRONG_KIND, f"ceremony {self.id} makes a new {self.key_name} key, not a "
                                 f"{material.key_name} key.")
        if self.key_name == "recovery" and instance is None:
            raise CustodyRefused(UNCERTIFIED, "a new Recovery key is certified at its own ceremony; run it "
                                 "against the instance (smki ceremony run).")
        if material is not None and self.key_name == "contingency" and instance is not None:
            _check_in_root(instance, material)
        prepared: list[PreparedRecovery] = []

        def then(session: Session, _old: KeyMaterial) -> tuple[KeyMaterial, list[IssuedShare]]:
            new = material or new_key_material(self.key_name)
            issued = establish(session, self.policy, new, custodians, actor=actor,
                               reason=f"new key at {self.subject}")
            if self.key_name == "recovery":
                assert instance is not None
                certificate = prepare_recovery_certificate(instance, new.private_key.public_key(), actor=actor)
                certificate.record(session)
                rotation = certificate.rotation
                audit.append(session, actor=actor, action="ceremony.key_certified", subject=self.subject,
                             detail={"serial": rotation.new_serial, "replaces": rotation.old_serial,
                                     "generation": rotation.generation})
                ceremony = session.get(Ceremony, self.id)
                assert ceremony is not None
                ceremony.steps = [*ceremony.steps, {"at": _now().isoformat(), "step": "key_certified",
                                                    "serial": rotation.new_serial}]
                prepared[:] = [certificate]  # a retried unit signs again: the last one is what committed
            return new, issued
        result = self._step("ceremony.new_key", actor, {}, then, "new_key")
        self.forget()
        if prepared:
            self.certified = prepared[0].switch()
        return result

    def forget(self) -> None:
        """Drop the shares from memory (Python cannot scrub bytes; dropping every reference is what it can do)."""
        self._shares.clear()

    def close(self, actor: str, outcome: str = "completed") -> None:
        self.forget()

        def work(session: Session) -> None:
            ceremony = self._open_row(session)
            audit.append(session, actor=actor, action="ceremony.closed", subject=self.subject,
                         detail={"outcome": outcome})
            ceremony.status, ceremony.closed_at, ceremony.outcome = "closed", _now(), outcome
            ceremony.steps = [*ceremony.steps, {"at": _now().isoformat(), "step": "closed", "outcome": outcome}]
        _refusals_recorded(self.database, actor, self.subject, work)
        self.closed = True


def ceremonies(database: Database, key_name: str | None = None) -> list[Ceremony]:
    with database.session() as session:
        query = select(Ceremony).order_by(Ceremony.id)
        if key_name:
            query = query.join(Custody, Custody.id == Ceremony.custody_id).where(Custody.key_name == key_name)
        return list(session.execute(query).scalars())


def _check_in_root(instance: Instance, material: KeyMaterial) -> None:
    """``material`` is the Contingency key the current Root OCA carries, wrapped under its wrapping key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap

    from smki.core.asn1 import WRAPPED_APEX_CONTINGENCY_KEY_OID

    root = instance.hierarchy.certificate("root_oca")
    carried = None
    try:
        value = root.extensions.get_extension_for_oid(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID)).value
        if isinstance(value, x509.UnrecognizedExtension) and material.wrapping_key is not None:
            carried = unwrap_contingency_key(value.value, material.wrapping_key)
    except (x509.ExtensionNotFound, InvalidUnwrap, ValueError):
        pass  # no wrapped key, or not under this wrapping key: refused below
    if carried != material.private_key.public_key():
        raise CustodyRefused(NOT_IN_ROOT, "the Contingency key given is not the one the current Root OCA carries "
                             "under that wrapping key; make the new Root OCA first (new_root_oca) and bring "
                             "the material it returned.")
