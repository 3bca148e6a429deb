"""Device CSR decisions a chunk at a time, for the Appendix M services at national scale.

The same rules as :func:`smki.ra.eligibility.evaluate_device_csr`, one CSR after another in order, but
with what they read (Authorised Subscriber status, the ledger's counts, provisioning states) fetched once
per chunk. The decisions and one audit record for the chunk are written in the caller's transaction,
the one that commits the certificates' ledger rows, so no certificate commits without its decision.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from smki.csr import ValidatedCsr
from smki.issuance import device_certificate_counts
from smki.ra import audit
from smki.ra.eligibility import Decision, DeviceFacts, evaluate_device_csr, is_authorised_subscriber
from smki.ra.identity import Principal, current_principal, require_aro
from smki.ra.models import CsrDecision, Device, Organisation
from smki.ra.settings import Eligibility


@dataclass(frozen=True)
class DeviceOutcome:
    """What became of one decided CSR: its decision (or the earlier check), status and any serial."""

    csr: ValidatedCsr
    allowed: bool
    rule: str
    code: str | None
    message: str
    manufacturing_flag: bool
    serial: str | None


def principal_of_credential(session: Session, credential_id: int) -> Principal:
    """The person behind a credential now: refused (``AU:``) if it was revoked since it was presented."""
    return current_principal(session, credential_id)


def decide_device_csrs(session: Session, rules: Eligibility, principal: Principal, csrs: Sequence[ValidatedCsr], *,
                       subscriber_id: int | None, manufacturer_id: int | None = None,
                       ad_hoc: bool = False) -> list[Decision]:
    """Decide each CSR in order (a later CSR for the same device counts the ones allowed before it).
    Raises NotAuthorised (``AZ:``) when the caller is not an ARO scoped to Device Certificates."""
    aro = require_aro(principal, "device")
    device_ids = sorted({csr.device_id.hex for csr in csrs if csr.device_id is not None})
    counts = device_certificate_counts(session, device_ids)
    devices = {d.device_id: d for d in session.execute(
        select(Device).where(Device.device_id.in_(device_ids))).scalars()} if device_ids else {}
    subscriber = subscriber_id if subscriber_id is not None else principal.organisation_id
    authorised = subscriber is not None and is_authorised_subscriber(session, subscriber, "device")
    # Held for the loop: the session's identity map holds objects weakly, so without these references
    # every evaluate_device_csr would load the same Organisation rows again.
    held = [session.get(Organisation, o) for o in (subscriber, manufacturer_id) if o is not None]
    pending: Counter[str] = Counter()
    decisions = []
    for csr in csrs:
        device = csr.device_id.hex if csr.device_id else ""
        facts = DeviceFacts(authorised, counts.get(device, 0), devices.get(device))
        decision = evaluate_device_csr(session, rules, principal, aro, csr, subscriber_id=subscriber,
                                       manufacturer_id=manufacturer_id, ad_hoc=ad_hoc,
                                       pending_for_device=pending[device], facts=facts)
        if decision.allowed:
            pending[device] += 1
        decisions.append(decision)
    del held
    return decisions


def record_device_decisions(session: Session, principal: Principal, outcomes: Sequence[DeviceOutcome], *,
                            channel: str, reference: str, subscriber_id: int | None,
                            manufacturer_id: int | None) -> None:
    """One audit record for the chunk (every CSR's digest, rule, code and serial), then one decision row
    per CSR, in the caller's transaction."""
    if not outcomes:
        return
    audit.append(session, actor=principal.label, action="device-csrs.decided", subject=reference, detail={
        "channel": channel, "subscriber": subscriber_id, "manufacturer": manufacturer_id,
        "issued": sum(1 for o in outcomes if o.serial), "refused": sum(1 for o in outcomes if not o.allowed),
        "csrs": [[o.csr.sha256, o.csr.device_id.hex if o.csr.device_id else None, o.rule, o.code, o.serial,
                  o.manufacturing_flag] for o in outcomes]})
    now = dt.datetime.now(dt.UTC)
    session.execute(insert(CsrDecision), [{
        "decided_at": now, "channel": channel, "kind": "device", "csr_sha256": o.csr.sha256,
        "subject_id": o.csr.device_id.hex if o.csr.device_id else None, "allowed": o.allowed, "rule": o.rule,
        "code": o.code, "message": o.message, "person_id": principal.person_id,
        "credential_id": principal.credential_id, "subscriber_organisation_id": subscriber_id,
        "manufacturer_organisation_id": manufacturer_id, "manufacturing_flag": o.manufacturing_flag,
        "status": "issued" if o.serial else ("approved" if o.allowed else "refused"), "serial": o.serial,
    } for o in outcomes])
