"""Eligibility decisions, read from ``policies/eligibility.yaml``: may this caller obtain this certificate?

Every decision names the rule that allowed or refused it, and is recorded (``ra_csr_decision``) with an
audit record in the same transaction. The public entry points for other areas are
:meth:`smki.ra.service.RegistrationAuthority.decide_device_csr` (which records) and the pure
:func:`evaluate_device_csr` / :func:`evaluate_organisation_csr` below (which only read), and
:func:`is_authorised_subscriber`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, exists, func, insert, select
from sqlalchemy.orm import Session

from smki.csr import ValidatedCsr
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.csr_volumes import MALFORMED_RULE
from smki.ra.identity import Appointed, Principal
from smki.ra.models import Authorisation, CsrDecision, Device, Organisation, UserIdentifier
from smki.ra.registry import REHEARSAL
from smki.ra.settings import Eligibility

DEFAULT_DEVICE_STATE = "pre_installation"
_DECISIONS = cast(Table, CsrDecision.__table__)
_DECISION_INSERT = insert(_DECISIONS)
_USER_IDS = cast(Table, UserIdentifier.__table__)
_ORGANISATIONS = cast(Table, Organisation.__table__)
_AUTHORISATIONS = cast(Table, Authorisation.__table__)
# An Organisation CSR's User ID with its owner and whether the owner is an Authorised Subscriber for
# Organisation Certificates: what evaluate_organisation_csr reads, in one statement.
_USER_ID_OWNER = (
    select(_USER_IDS.c.organisation_id, _USER_IDS.c.user_role, _ORGANISATIONS.c.id, _ORGANISATIONS.c.name,
           _ORGANISATIONS.c.is_party, _ORGANISATIONS.c.srept_passed_at, _ORGANISATIONS.c.category,
           exists().where(_AUTHORISATIONS.c.organisation_id == _USER_IDS.c.organisation_id,
                          _AUTHORISATIONS.c.policy == "organisation").label("authorised"),
           # rehearsing SREPT (registry.begin_rehearsal): its CSRs are judged as if it had passed
           exists().where(_AUTHORISATIONS.c.organisation_id == _USER_IDS.c.organisation_id,
                          _AUTHORISATIONS.c.policy == REHEARSAL).label("rehearsing"))
    .select_from(_USER_IDS.join(_ORGANISATIONS, _ORGANISATIONS.c.id == _USER_IDS.c.organisation_id))
    .where(_USER_IDS.c.eui64 == bindparam("eui")))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    code: str | None                 # None when allowed; IN:/UD:/WF: otherwise
    message: str
    kind: str                        # organisation | device
    subject_id: str | None           # EUI-64 or Device ID, hex
    subscriber_organisation_id: int | None
    manufacturer_organisation_id: int | None = None
    manufacturing_flag: bool = False
    decision_id: int | None = None   # set once recorded


@dataclass(frozen=True)
class DeviceFacts:
    """What :func:`evaluate_device_csr` would otherwise read for each CSR, read once for a whole batch
    chunk (one query each instead of three per CSR)."""

    authorised: bool              # the Subscriber of record is an Authorised Subscriber for Device certs
    existing: int                 # Device Certificates already issued for the Device ID (the ledger)
    device: Device | None         # what the RA knows of the device's provisioning state


def is_authorised_subscriber(session: Session, organisation_id: int, policy: str) -> bool:
    """Whether the organisation is an Authorised Subscriber under the Certificate Policy named
    (``organisation`` or ``device``), as the RA granted it on the Authorised Subscriber application form.
    Read-only; callers outside the RA (the Device CSR gate) use it to describe a Subscriber, never to
    decide eligibility, which :func:`evaluate_device_csr` does."""
    return session.execute(select(Authorisation.id).where(Authorisation.organisation_id == organisation_id,
                                                          Authorisation.policy == policy)).first() is not None


def device_certificate_count(session: Session, device_id: str) -> int:
    """Device Certificates ever issued for the Device ID, from the CA's issuance ledger."""
    return session.execute(select(func.count(IssuanceRecord.id)).where(
        IssuanceRecord.profile == "device", IssuanceRecord.subject_id == device_id)).scalar_one()


def evaluate_organisation_csr(session: Session, rules: Eligibility, aro: Appointed,
                              csr: ValidatedCsr) -> Decision:
    assert csr.entity_identifier is not None and csr.role is not None
    eui = csr.entity_identifier.hex

    def refuse(rule: str, message: str, subscriber: int | None = None) -> Decision:
        # a named role rule without a code of its own is refused with the generic role code
        code = rules.codes.get(rule) or rules.code("org.role")
        return Decision(False, rule, code, message, "organisation", eui, subscriber)

    identifier = session.execute(_USER_ID_OWNER, {"eui": eui}).first()
    if identifier is None or identifier.organisation_id not in aro.acts_for:
        return refuse("org.eui-owned", f"the Entity Identifier {csr.entity_identifier} is not a User ID of any "
                      "Authorised Subscriber you act for; an Organisation CSR must carry the User ID of a Party "
                      "on whose behalf you may submit.")
    owner = identifier
    if not owner.is_party:
        return refuse("org.not-a-party", f"{owner.name} is not a SEC Party and cannot be a Subscriber.", owner.id)
    if rules.require_srept and owner.srept_passed_at is None and not owner.rehearsing:
        return refuse("org.srept", f"{owner.name} has not passed the SMKI and Repository Entry Process Tests.",
                      owner.id)
    if not owner.authorised:
        return refuse("org.authorised-subscriber", f"{owner.name} is not an Authorised Subscriber for "
                      "Organisation Certificates; apply on the Authorised Subscriber application form.", owner.id)
    role = csr.role.name
    if role in rules.dcc_only_roles:
        if owner.category == "dcc" and identifier.user_role == "DCC":
            return Decision(True, rules.dcc_only_rule, None, f"the DCC holds the {role} role.", "organisation",
                            eui, owner.id)
        return refuse(rules.dcc_only_rule, f"the {role} role (OU {csr.role.ou}) is held by the DCC alone.", owner.id)
    rule = rules.organisation_roles.get(role)
    if rule is None:
        return refuse("org.role", f"no Subscriber may request the {role} role (OU {csr.role.ou}).", owner.id)
    if identifier.user_role in rule.user_roles or owner.name in rule.authorised_parties:
        return Decision(True, rule.rule, None, f"{eui} is {owner.name}'s User ID as {identifier.user_role}, "
                        f"which is eligible for the {role} role.", "organisation", eui, owner.id)
    eligible = ", ".join(rule.user_roles) or "the Parties named in policies/eligibility.yaml"
    return Decision(False, rule.rule, rules.code("org.role"),
                    f"{eui} is {owner.name}'s User ID as {identifier.user_role}; the {role} role (OU "
                    f"{csr.role.ou}) is for the User ID of a Party in User Role {eligible}.",
                    "organisation", eui, owner.id)


def evaluate_device_csr(session: Session, rules: Eligibility, principal: Principal, aro: Appointed,
                        csr: ValidatedCsr, *, subscriber_id: int | None = None, manufacturer_id: int | None = None,
                        ad_hoc: bool = False, pending_for_device: int = 0,
                        facts: DeviceFacts | None = None) -> Decision:
    """Checks, in order: the Subscriber of record is a Party (never a manufacturer) the ARO acts for and an
    Authorised Subscriber for Device Certificates; a named manufacturer is a known non-Party; for the ad hoc
    service, the caller's User Role and that the device already has a certificate; fewer than the limit of
    certificates for the Device ID; the device's provisioning state (SEC L3.16)."""
    assert csr.device_id is not None
    device_id = csr.device_id.hex
    subscriber_id = subscriber_id if subscriber_id is not None else principal.organisation_id

    def refuse(rule: str, message: str, subscriber: int | None = None) -> Decision:
        return Decision(False, rule, rules.code(rule), message, "device", device_id, subscriber, manufacturer_id,
                        manufacturer_id is not None)

    subscriber = session.get(Organisation, subscriber_id) if subscriber_id is not None else None
    if subscriber is None:
        return refuse("device.acts-for", "name the Authorised Subscriber you submit for.")
    if not subscriber.is_party:
        if subscriber.category == "manufacturer" and not rules.manufacturer_direct_issuance:
            return refuse("device.manufacturer-direct", f"{subscriber.name} is a manufacturer, not a SEC Party: it "
                          "never obtains Device Certificates in its own name. An Authorised Subscriber submits its "
                          "CSRs, naming it as the manufacturer, and is the Subscriber of record.", subscriber.id)
        return refuse("device.not-a-party", f"{subscriber.name} is not a SEC Party.", subscriber.id)
    if subscriber.id not in aro.acts_for:
        return refuse("device.acts-for", f"you do not act for {subscriber.name}.", subscriber.id)
    authorised = facts.authorised if facts is not None \
        else is_authorised_subscriber(session, subscriber.id, "device")
    if rules.device_require_authorised and not authorised:
        return refuse("device.authorised-subscriber", f"{subscriber.name} is not an Authorised Subscriber for Device "
                      "Certificates.", subscriber.id)
    if manufacturer_id is not None:
        manufacturer = session.get(Organisation, manufacturer_id)
        if manufacturer is None or manufacturer.category != "manufacturer":
            return refuse("device.manufacturer-unknown", f"organisation {manufacturer_id} is not a manufacturer "
                          "the RA has recorded.", subscriber.id)
    existing = facts.existing if facts is not None else device_certificate_count(session, device_id)
    if ad_hoc:
        roles = {row for row in session.execute(select(UserIdentifier.user_role).where(
            UserIdentifier.organisation_id == subscriber.id)).scalars()}
        if not (roles & set(rules.ad_hoc_user_roles) or (rules.ad_hoc_dcc and subscriber.category == "dcc")):
            return refuse("device.ad-hoc-role", "the ad hoc Device CSR service is for Import Suppliers, Gas "
                          "Suppliers and the DCC; use the batched service.", subscriber.id)
        if rules.ad_hoc_replacement_only and existing == 0:
            return refuse("device.ad-hoc-replacement", f"device {csr.device_id} has no certificate yet; the ad hoc "
                          "service only replaces the certificate of a known device. Use the batched service.",
                          subscriber.id)
    # "fewer than 100 Device Certificates may exist per Device ID": this one would be number existing + 1
    limit = rules.max_certificates_per_device
    if existing + pending_for_device + 1 >= limit:
        return refuse("device.certificate-limit", f"device {csr.device_id} already has {existing + pending_for_device} "
                      f"certificates; fewer than {limit} may exist per Device ID. The service desk can raise the "
                      "threshold.", subscriber.id)
    device = facts.device if facts is not None else session.get(Device, device_id)
    state = device.state if device else DEFAULT_DEVICE_STATE
    allowed_by = rules.provisioning_states.get(state, ())
    permitted = (
        "any_authorised_subscriber" in allowed_by
        or ("responsible_supplier" in allowed_by and device is not None
            and device.responsible_organisation_id == subscriber.id)
        or ("dcc_if_dcc_owned" in allowed_by and device is not None and device.dcc_owned
            and subscriber.category == "dcc")
    )
    if not permitted:
        return refuse("device.provisioning-state", f"device {csr.device_id} is {state.replace('_', ' ')}; in that "
                      f"state only {', '.join(allowed_by) or 'no one'} may obtain its certificates.", subscriber.id)
    return Decision(True, f"device.state.{state}", None,
                    f"{subscriber.name} is an Authorised Subscriber for Device Certificates and may obtain "
                    f"certificates for a device that is {state.replace('_', ' ')}.", "device", device_id,
                    subscriber.id, manufacturer_id, manufacturer_id is not None)


def record_decision(session: Session, decision: Decision, csr: ValidatedCsr, principal: Principal | None, *,
                    channel: str, status: str | None = None, serial: str | None = None,
                    also: Callable[[int], Sequence[audit.Entry]] | None = None) -> Decision:
    """Record the decision and its audit record in the caller's transaction, which commits them together
    or neither. ``status`` defaults to approved or refused; an issuance recorded in the same transaction
    passes its own (``released``) and the serial, and ``also`` the audit records that follow the decision's
    (given the decision's id), appended with it in one move of the chain's head."""
    result = session.execute(_DECISION_INSERT, {
        "decided_at": dt.datetime.now(dt.UTC), "channel": channel, "kind": decision.kind,
        "csr_sha256": csr.sha256, "subject_id": decision.subject_id, "allowed": decision.allowed,
        "rule": decision.rule, "code": decision.code, "message": decision.message,
        "person_id": principal.person_id if principal else None,
        "credential_id": principal.credential_id if principal else None,
        "subscriber_organisation_id": decision.subscriber_organisation_id,
        "manufacturer_organisation_id": decision.manufacturer_organisation_id,
        "manufacturing_flag": decision.manufacturing_flag,
        "status": status or ("approved" if decision.allowed else "refused"), "serial": serial})
    decision_id = _inserted_id(result)
    action = "csr.approved" if decision.allowed else "csr.refused"
    audit.append_many(session, [audit.Entry(
        principal.label if principal else "system", action, f"{decision.kind}:{decision.subject_id}",
        {"rule": decision.rule, "code": decision.code, "csr_sha256": csr.sha256, "channel": channel,
         "subscriber": decision.subscriber_organisation_id, "manufacturer": decision.manufacturer_organisation_id,
         "manufacturing_flag": decision.manufacturing_flag, "message": decision.message}),
        *(also(decision_id) if also else ())])
    return replace(decision, decision_id=decision_id)


def record_rejection(session: Session, principal: Principal, raw: bytes | str, kind: str, *, channel: str,
                     code: str, message: str) -> int:
    """A CSR refused before any eligibility rule (malformed, the wrong kind, an unsupported key) is still a
    CSR the Party sent: it gets its refused decision row, so that each CSR is counted once whatever became of
    it (SEC L8.9 volumes, :mod:`smki.ra.csr_volumes`), and its ``csr.rejected`` audit record, in the caller's
    transaction. Nothing of the CSR is known but its hash, its kind as asked and who sent it."""
    import hashlib

    octets = raw.encode() if isinstance(raw, str) else raw
    digest = hashlib.sha256(octets).hexdigest()
    result = session.execute(_DECISION_INSERT, {
        "decided_at": dt.datetime.now(dt.UTC), "channel": channel, "kind": kind, "csr_sha256": digest,
        "subject_id": None, "allowed": False, "rule": MALFORMED_RULE, "code": code, "message": message,
        "person_id": principal.person_id, "credential_id": principal.credential_id,
        "subscriber_organisation_id": None, "manufacturer_organisation_id": None, "manufacturing_flag": False,
        "status": "refused", "serial": None})
    audit.append_many(session, [audit.Entry(principal.label, "csr.rejected", kind,
                                            {"code": code, "channel": channel, "csr_sha256": digest})])
    return _inserted_id(result)


def _inserted_id(result: Any) -> int:
    """The id of the decision row ``_DECISION_INSERT`` just wrote."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None
    return int(key[0])
