"""Build a population of Parties, people and credentials directly (no forms): for ``smki demo``, the
tests, and rehearsals. Every step is audited like any other RA action."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from smki.ra import audit, registry
from smki.ra.identity import issue_api_token
from smki.ra.service import RegistrationAuthority


@dataclass(frozen=True)
class Member:
    person_id: int
    appointment_id: int | None
    organisation_id: int | None
    name: str
    role: str
    token: str | None


class PopulationBuilder:
    def __init__(self, ra: RegistrationAuthority, actor: str = "ra:population") -> None:
        self.ra = ra
        self.actor = actor

    def _unit(self, work):
        return audit.audited(self.ra.database, work)

    def party(self, name: str, category: str, user_roles: Iterable[tuple[str, str | None]] = (), *,
              srept: bool = True, authorised: Iterable[str] = ("organisation", "device"),
              company_number: str | None = None) -> int:
        roles, policies = list(user_roles), list(authorised)

        def work(session: Session) -> int:
            party = registry.register_organisation(session, self.ra.settings, actor=self.actor, name=name,
                                                   category=category, company_number=company_number,
                                                   user_roles=roles)
            if srept:
                registry.record_srept(session, actor=self.actor, organisation_id=party.id, passed=True)
            for policy in policies:
                registry.authorise(session, self.ra.settings, actor=self.actor, organisation_id=party.id,
                                   policy=policy)
            return party.id
        return self._unit(work)

    def manufacturer(self, name: str) -> int:
        def work(session: Session) -> int:
            return registry.register_organisation(session, self.ra.settings, actor=self.actor, name=name,
                                                  category="manufacturer").id
        return self._unit(work)

    def member(self, organisation_id: int | None, name: str, role: str | None, *, scopes: Iterable[str] = (),
               acts_for: Iterable[int] | None = None, token: bool = True, email: str | None = None) -> Member:
        """A person, optionally appointed (director, sro, aro, ra_operator, pma, code_admin), with an API token."""
        scope_list = list(scopes)
        acts = list(acts_for) if acts_for is not None else ([organisation_id] if organisation_id else [])

        def work(session: Session) -> Member:
            person = registry.add_person(session, organisation_id=organisation_id, name=name, email=email)
            appointment = None
            if role:
                appointment = registry.appoint(session, actor=self.actor, person=person, role=role,
                                               organisation_id=organisation_id, scopes=scope_list,
                                               acts_for=acts if role == "aro" else (),
                                               identity_verified=True, screening_passed=True)
            secret = None
            if token:
                audit.append(session, actor=self.actor, action="credential.issued",
                             subject=f"person:{person.id}:{person.name}", detail={"kind": "api_token"})
                secret = issue_api_token(session, person.id, label=f"{role or 'person'} token",
                                         entropy=self.ra.settings.api_token_bytes)
            return Member(person.id, appointment.id if appointment else None, organisation_id, name, role or "", secret)
        return self._unit(work)

    def withdraw(self, member: Member, reason: str = "left the company") -> None:
        assert member.appointment_id is not None
        self._unit(lambda session: registry.withdraw(session, actor=self.actor, appointment_id=member.appointment_id,
                                                     reason=reason))
