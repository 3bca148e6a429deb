"""Parties, organisations that are not Parties, User IDs, SREPT, Authorised Subscriber status, people
and their appointments. Every change appends its audit record first, in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from smki.core.errors import SmkiError
from smki.core.eui64 import Eui64
from smki.ra import audit
from smki.ra.identity import revoke_credentials
from smki.ra.models import Appointment, Authorisation, Organisation, Person, UserIdentifier
from smki.ra.settings import RaSettings

NOT_A_PARTY = "IN:AS01"
NO_SREPT = "IN:AS02"
UNKNOWN = "WF:REG01"
DUPLICATE = "WF:REG02"
BAD_USER_ID = "FM:REG03"
NOT_WITHDRAWABLE = "WF:REG04"


class RegistryError(SmkiError):
    pass


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def organisation(session: Session, organisation_id: int) -> Organisation:
    found = session.get(Organisation, organisation_id)
    if found is None:
        raise RegistryError(UNKNOWN, f"there is no organisation {organisation_id} in the RA's records.")
    return found


def _allocate_user_id(session: Session, prefix: str) -> str:
    used = {row for row in session.execute(select(UserIdentifier.eui64).where(
        UserIdentifier.eui64.like(f"{prefix}%"))).scalars()}
    width = 16 - len(prefix)
    for counter in range(1, 16 ** width):
        candidate = f"{prefix}{counter:0{width}X}"
        if candidate not in used:
            return candidate
    raise RegistryError("WF:REG05", f"no User ID is left under prefix {prefix}; change policies/ra.yaml.")


def register_organisation(session: Session, settings: RaSettings, *, actor: str, name: str, category: str,
                          company_number: str | None = None, registered_address: str | None = None,
                          is_rdp: bool = False, user_roles: Iterable[tuple[str, str | None]] = ()) -> Organisation:
    """Record a Party (or RDP), or an organisation that is not a Party (a manufacturer); allocate each
    User Role its EUI-64 User ID unless one is given."""
    rules = settings.eligibility
    if category not in (*rules.party_categories, *rules.non_party_categories):
        raise RegistryError(BAD_USER_ID, f"unknown category {category!r}.", field="party_category")
    if session.execute(select(Organisation.id).where(Organisation.name == name)).first():
        raise RegistryError(DUPLICATE, f"an organisation called {name!r} is already registered.", field="legal_name")
    is_party = category in rules.party_categories
    roles = list(user_roles)
    if roles and not is_party:
        raise RegistryError(NOT_A_PARTY, f"{name} is not a SEC Party, so it holds no User Roles.", field="user_roles")
    audit.append(session, actor=actor, action="organisation.registered", subject=name,
                 detail={"category": category, "is_party": is_party, "is_rdp": is_rdp,
                         "company_number": company_number, "user_roles": roles})
    record = Organisation(name=name, company_number=company_number, registered_address=registered_address,
                          category=category, is_party=is_party, is_rdp=is_rdp, created_at=now())
    session.add(record)
    session.flush()
    for role, user_id in roles:
        add_user_id(session, settings, record, role, user_id)
    return record


def add_user_id(session: Session, settings: RaSettings, owner: Organisation, role: str,
                user_id: str | None = None) -> UserIdentifier:
    if role not in (*settings.eligibility.user_roles, "DCC"):
        raise RegistryError(BAD_USER_ID, f"{role!r} is not a User Role ({', '.join(settings.eligibility.user_roles)}).",
                            field="user_roles")
    if role == "DCC" and owner.category != "dcc":
        raise RegistryError(BAD_USER_ID, "only the DCC holds the DCC's own entity identifiers.", field="user_roles")
    try:
        eui = Eui64.parse(user_id).hex if user_id else _allocate_user_id(session, settings.user_id_prefix)
    except ValueError as exc:
        raise RegistryError(BAD_USER_ID, str(exc), field="user_roles") from exc
    if session.execute(select(UserIdentifier.id).where(UserIdentifier.eui64 == eui)).first():
        raise RegistryError(DUPLICATE, f"User ID {Eui64.parse(eui)} is already allocated.", field="user_roles")
    identifier = UserIdentifier(organisation_id=owner.id, user_role=role, eui64=eui)
    session.add(identifier)
    session.flush()
    return identifier


def user_ids(session: Session, organisation_id: int) -> list[UserIdentifier]:
    return list(session.execute(select(UserIdentifier).where(UserIdentifier.organisation_id == organisation_id)
                                .order_by(UserIdentifier.id)).scalars())


def user_ids_in_roles(session: Session, user_roles: Iterable[str]) -> list[UserIdentifier]:
    """Every User ID allocated for one of ``user_roles`` (IS, GS, ED, GT ...), oldest first: the Parties acting
    in those roles, for clients such as the device estate that pick owners among them."""
    return list(session.execute(select(UserIdentifier).where(UserIdentifier.user_role.in_(tuple(user_roles)))
                                .order_by(UserIdentifier.id)).scalars())


def record_srept(session: Session, *, actor: str, organisation_id: int, passed: bool,
                 evidence: dict[str, object] | None = None) -> Organisation:
    """Record whether the Party passed SREPT; ``evidence`` (the run and its evidence pack's digest, when
    recorded on the strength of a SREPT run in the sandbox) goes into the audit record."""
    party = organisation(session, organisation_id)
    if not party.is_party:
        raise RegistryError(NOT_A_PARTY, f"{party.name} is not a SEC Party; SREPT is for Parties.")
    audit.append(session, actor=actor, action="party.srept", subject=party.name,
                 detail={"passed": passed, **(evidence or {})})
    party.srept_passed_at = now() if passed else None
    return party


# A Party rehearsing SREPT (an open run of smki.srept) is set up as the DCC's test environment sets up a testing
# Party: as an Authorised Subscriber under the rehearsal's Certificate Policies, and treated as having passed
# SREPT for its CSRs and its AROs' Repository credentials, until the run ends. The footing is an Authorisation
# row of this policy name; Authorised Subscriber applications still need a recorded pass.
REHEARSAL = "rehearsal"


def rehearsing(session: Session, organisation_id: int) -> bool:
    return session.execute(select(Authorisation.id).where(Authorisation.organisation_id == organisation_id,
                                                          Authorisation.policy == REHEARSAL)).first() is not None


def begin_rehearsal(session: Session, *, actor: str, organisation_id: int, policies: Iterable[str]) -> list[str]:
    """Put the Party on a rehearsal footing; returns what was granted (what :func:`end_rehearsal` withdraws)."""
    party = organisation(session, organisation_id)
    if not party.is_party:
        raise RegistryError(NOT_A_PARTY, f"{party.name} is not a SEC Party; SREPT is for Parties.")
    held = set(authorisations(session, party.id))
    granted = [policy for policy in (REHEARSAL, *policies) if policy not in held]
    audit.append(session, actor=actor, action="party.rehearsal.begun", subject=party.name, detail={"granted": granted})
    for policy in granted:
        session.add(Authorisation(organisation_id=party.id, policy=policy, granted_at=now()))
    session.flush()
    return granted


def end_rehearsal(session: Session, *, actor: str, organisation_id: int, granted: Iterable[str]) -> None:
    """Withdraw what :func:`begin_rehearsal` granted."""
    party = organisation(session, organisation_id)
    withdrawn = sorted(set(granted))
    audit.append(session, actor=actor, action="party.rehearsal.ended", subject=party.name,
                 detail={"withdrawn": withdrawn})
    for grant in session.execute(select(Authorisation).where(Authorisation.organisation_id == party.id,
                                                             Authorisation.policy.in_(withdrawn))).scalars():
        session.delete(grant)
    session.flush()


def authorise(session: Session, settings: RaSettings, *, actor: str, organisation_id: int,
              policy: str) -> Authorisation:
    party = organisation(session, organisation_id)
    if not party.is_party:
        raise RegistryError(NOT_A_PARTY, f"{party.name} is not a SEC Party and can never be an Authorised "
                            "Subscriber in its own name.")
    if settings.eligibility.require_srept and party.srept_passed_at is None:
        raise RegistryError(NO_SREPT, f"{party.name} must pass the SMKI and Repository Entry Process Tests before "
                            "it may become an Authorised Subscriber.")
    existing = session.execute(select(Authorisation).where(Authorisation.organisation_id == party.id,
                                                           Authorisation.policy == policy)).scalar_one_or_none()
    if existing:
        return existing
    audit.append(session, actor=actor, action="subscriber.authorised", subject=party.name, detail={"policy": policy})
    grant = Authorisation(organisation_id=party.id, policy=policy, granted_at=now())
    session.add(grant)
    session.flush()
    return grant


def authorisations(session: Session, organisation_id: int) -> list[str]:
    return sorted(session.execute(select(Authorisation.policy).where(
        Authorisation.organisation_id == organisation_id)).scalars())


def add_person(session: Session, *, organisation_id: int | None, name: str, email: str | None = None) -> Person:
    person = Person(organisation_id=organisation_id, name=name, email=email, created_at=now())
    session.add(person)
    session.flush()
    return person


def appoint(session: Session, *, actor: str, person: Person, role: str, organisation_id: int | None,
            scopes: Iterable[str] = (), acts_for: Iterable[int] = (), submission_id: int | None = None,
            identity_verified: bool = False, screening_passed: bool = False) -> Appointment:
    scopes = set(scopes)
    acts = sorted(set(acts_for))
    audit.append(session, actor=actor, action=f"{role}.appointed", subject=f"person:{person.id}:{person.name}",
                 detail={"organisation": organisation_id, "scopes": sorted(scopes), "acts_for": acts,
                         "submission": submission_id, "identity_verified": identity_verified,
                         "screening_passed": screening_passed})
    appointment = Appointment(person_id=person.id, organisation_id=organisation_id, role=role, status="approved",
                              scope_organisation="organisation" in scopes, scope_device="device" in scopes,
                              scope_repository="repository" in scopes, acts_for=acts,
                              identity_verified=identity_verified, screening_passed=screening_passed,
                              submission_id=submission_id, created_at=now(), decided_at=now())
    session.add(appointment)
    session.flush()
    return appointment


def withdraw(session: Session, *, actor: str, appointment_id: int, reason: str | None = None,
             by_organisation: int | None = None) -> Appointment:
    """Withdraw an appointment at once: the appointment ends and every credential of the person is revoked
    in the same transaction, so no request can succeed with them after this commits."""
    appointment = session.get(Appointment, appointment_id)
    if appointment is None or (by_organisation is not None and appointment.organisation_id != by_organisation):
        raise RegistryError(UNKNOWN, f"there is no appointment {appointment_id} at your Party.")
    if appointment.status != "approved":
        raise RegistryError(NOT_WITHDRAWABLE, f"appointment {appointment_id} is {appointment.status}, not active.")
    person = session.get(Person, appointment.person_id)
    assert person is not None
    audit.append(session, actor=actor, action=f"{appointment.role}.withdrawn",
                 subject=f"person:{person.id}:{person.name}", detail={"appointment": appointment.id, "reason": reason})
    appointment.status, appointment.withdrawn_at, appointment.reason = "withdrawn", now(), reason
    # the RAPP: withdrawal revokes every credential of the person, whatever else they hold
    revoke_credentials(session, person.id)
    return appointment


def appointments(session: Session, organisation_id: int, role: str | None = None) -> list[Appointment]:
    query = select(Appointment).where(Appointment.organisation_id == organisation_id)
    if role:
        query = query.where(Appointment.role == role)
    return list(session.execute(query.order_by(Appointment.id)).scalars())


def appointment(session: Session, appointment_id: int) -> Appointment | None:
    """One appointment by its number, whatever its Party (None: there is none)."""
    return session.get(Appointment, appointment_id)
