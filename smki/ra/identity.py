"""Who is asking: credentials (API tokens, IKI client certificates), authentication, and the
authorisation checks every RA entry point makes.

Refusal codes: ``AU:`` the caller is not authenticated (HTTP 401), ``AZ:`` authenticated but not
allowed (HTTP 403). Each refusal names what the caller would need.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Table, and_, bindparam, select
from sqlalchemy.orm import Session

from smki.core.errors import SmkiError
from smki.ra.models import Appointment, Credential, Organisation, Person

TOKEN_PREFIX = "smki"

# Authentication
AU_MISSING = "AU:TOK01"
AU_INVALID = "AU:TOK02"
AU_REVOKED = "AU:TOK03"
AU_CERT_UNKNOWN = "AU:CRT01"
AU_CERT_INVALID = "AU:CRT02"
# Authorisation
AZ_NOT_PARTY = "AZ:ORG01"
AZ_NOT_ARO = "AZ:ARO01"
AZ_NOT_ACTING_FOR = "AZ:ARO02"
AZ_SCOPE = "AZ:ARO03"
AZ_NOT_SRO = "AZ:SRO01"
AZ_OTHER_PARTY = "AZ:SRO02"
AZ_NOT_OPERATOR = "AZ:OPR01"
AZ_NOT_ALLOWED = "AZ:RA01"


class NotAuthenticated(SmkiError):
    pass


class NotAuthorised(SmkiError):
    pass


@dataclass(frozen=True)
class Appointed:
    """One approved appointment of the caller."""

    id: int
    role: str
    organisation_id: int | None
    scopes: frozenset[str]        # organisation, device, repository (AROs)
    acts_for: frozenset[int]      # organisation ids of the Authorised Subscribers an ARO acts for


@dataclass(frozen=True)
class Principal:
    person_id: int
    name: str
    organisation_id: int | None
    organisation_name: str | None
    organisation_is_party: bool
    organisation_category: str | None
    credential_id: int
    credential_kind: str
    system: str | None
    appointments: tuple[Appointed, ...]

    @property
    def label(self) -> str:
        """How the caller appears in the ledger and the audit log."""
        who = f"person:{self.person_id}:{self.name}"
        return f"{who}/system:{self.system}" if self.system else who

    def holds(self, role: str, organisation_id: int | None = None) -> Appointed | None:
        for appointment in self.appointments:
            if appointment.role == role and (organisation_id is None or appointment.organisation_id == organisation_id):
                return appointment
        return None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(a.role for a in self.appointments)

    @property
    def is_dcc(self) -> bool:
        return self.organisation_category == "dcc"


# --- credentials -------------------------------------------------------------------------------------------

def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def issue_api_token(session: Session, person_id: int, *, label: str | None = None, entropy: int = 32) -> str:
    """Create an API token bound to ``person_id``; returns the token, which is never stored."""
    token_id = secrets.token_hex(8)
    token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(entropy)}"
    session.add(Credential(person_id=person_id, kind="api_token", lookup=f"tok:{token_id}",
                           secret_hash=_sha256(token), label=label, status="active",
                           created_at=dt.datetime.now(dt.UTC)))
    session.flush()
    return token


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    return _sha256(certificate.public_bytes(serialization.Encoding.DER))


def register_client_certificate(session: Session, person_id: int, certificate: x509.Certificate, *,
                                system: str | None = None) -> Credential:
    credential = Credential(person_id=person_id, kind="client_certificate",
                            lookup=f"crt:{certificate_fingerprint(certificate)}", label=system,
                            serial=f"{certificate.serial_number:X}", status="active",
                            created_at=dt.datetime.now(dt.UTC))
    session.add(credential)
    session.flush()
    return credential


def revoke_credentials(session: Session, person_id: int) -> list[Credential]:
    """Revoke every active credential of the person, at once."""
    now = dt.datetime.now(dt.UTC)
    revoked = list(session.execute(select(Credential).where(Credential.person_id == person_id,
                                                            Credential.status == "active")).scalars())
    for credential in revoked:
        credential.status, credential.revoked_at = "revoked", now
    session.flush()
    return revoked


# --- authentication ----------------------------------------------------------------------------------------

_CREDENTIALS = cast(Table, Credential.__table__)
_PEOPLE = cast(Table, Person.__table__)
_ORGANISATIONS = cast(Table, Organisation.__table__)
_APPOINTMENTS = cast(Table, Appointment.__table__)
# Who holds a credential, with the Party and every approved appointment, in one statement (one row per
# appointment): it is read on every request, so it is one round trip of Core, not four ORM loads.
_HOLDER = (select(_CREDENTIALS.c.id, _CREDENTIALS.c.kind, _CREDENTIALS.c.label, _CREDENTIALS.c.status,
                  _CREDENTIALS.c.secret_hash, _PEOPLE.c.id.label("person_id"), _PEOPLE.c.name,
                  _PEOPLE.c.organisation_id, _ORGANISATIONS.c.name.label("organisation_name"),
                  _ORGANISATIONS.c.is_party, _ORGANISATIONS.c.category,
                  _APPOINTMENTS.c.id.label("appointment_id"), _APPOINTMENTS.c.role,
                  _APPOINTMENTS.c.organisation_id.label("appointment_organisation_id"),
                  _APPOINTMENTS.c.scope_organisation, _APPOINTMENTS.c.scope_device,
                  _APPOINTMENTS.c.scope_repository, _APPOINTMENTS.c.acts_for)
           .select_from(_CREDENTIALS.join(_PEOPLE, _PEOPLE.c.id == _CREDENTIALS.c.person_id)
                        .outerjoin(_ORGANISATIONS, _ORGANISATIONS.c.id == _PEOPLE.c.organisation_id)
                        .outerjoin(_APPOINTMENTS, and_(_APPOINTMENTS.c.person_id == _PEOPLE.c.id,
                                                       _APPOINTMENTS.c.status == "approved")))
           .order_by(_APPOINTMENTS.c.id))
# Built once, with parameters: a statement's cache key is then computed once, not on every request.
_HOLDER_OF_ID = _HOLDER.where(_CREDENTIALS.c.id == bindparam("credential_id"))
_HOLDER_OF_LOOKUP = _HOLDER.where(_CREDENTIALS.c.lookup == bindparam("lookup"),
                                  _CREDENTIALS.c.kind == bindparam("kind"))


def _holder(rows: Sequence[Any]) -> Principal:  # rows of _HOLDER
    first = rows[0]
    appointments = tuple(
        Appointed(r.appointment_id, r.role, r.appointment_organisation_id,
                  frozenset(s for s, on in (("organisation", r.scope_organisation), ("device", r.scope_device),
                                            ("repository", r.scope_repository)) if on),
                  frozenset(r.acts_for or ()))
        for r in rows if r.appointment_id is not None)
    return Principal(first.person_id, first.name, first.organisation_id, first.organisation_name,
                     bool(first.organisation_name is not None and first.is_party), first.category, first.id,
                     first.kind, first.label, appointments)


def principal_for(session: Session, credential: Credential) -> Principal:
    rows = session.execute(_HOLDER_OF_ID, {"credential_id": credential.id}).all()
    assert rows, "a credential always has its holder"
    return _holder(rows)


def current_principal(session: Session, credential_id: int) -> Principal:
    """The holder of a credential as the database says now, in ``session``'s transaction: refused
    (``AU:TOK03``) if the credential was revoked (its holder withdrawn) since it was presented. A decision
    made under the audit chain's lock reads this, so no withdrawal can slip in between."""
    rows = session.execute(_HOLDER_OF_ID, {"credential_id": credential_id}).all()
    _active(rows[0] if rows else None, AU_INVALID, "credential")
    return _holder(rows)


def _active(credential: Any, unknown_code: str, what: str) -> Any:  # a Credential or a row of _HOLDER, or None
    if credential is None:
        raise NotAuthenticated(unknown_code, f"the {what} is not one the RA issued; sign in with the credential "
                               "the RA gave you.")
    if credential.status != "active":
        raise NotAuthenticated(AU_REVOKED, f"the {what} was revoked (its holder was withdrawn or it was "
                               "replaced); ask your SRO to nominate you again.")
    return credential


def authenticate_token(session: Session, token: str | None) -> Principal:
    """The person an API token (``Authorization: Bearer <token>``) belongs to.

    Read from the database on every request, not cached: a token revoked (its ARO withdrawn) is refused
    on the very next request, by every worker process. The check is one indexed lookup by the token's id
    and a SHA-256 comparison (tokens carry 256 bits of entropy, so no slow key derivation is needed)."""
    if not token:
        raise NotAuthenticated(AU_MISSING, "no credentials were presented: send 'Authorization: Bearer "
                               "<API token>' or connect with your IKI client certificate.")
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise NotAuthenticated(AU_INVALID, "the API token is malformed; tokens look like smki_<id>_<secret>.")
    rows = session.execute(_HOLDER_OF_LOOKUP, {"lookup": f"tok:{parts[1]}", "kind": "api_token"}).all()
    if rows and not hmac.compare_digest(rows[0].secret_hash or "", _sha256(token.strip())):
        rows = []
    _active(rows[0] if rows else None, AU_INVALID, "API token")
    return _holder(rows)


def authenticate_certificate(session: Session, certificate: x509.Certificate, iki_ca: x509.Certificate,
                             now: dt.datetime | None = None) -> Principal:
    """The person (or system) an IKI client certificate was issued to. The TLS layer has already proved
    possession of the key; this checks issuer, validity and that the RA issued and has not revoked it."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        certificate.verify_directly_issued_by(iki_ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise NotAuthenticated(AU_CERT_INVALID, "the client certificate was not issued by the sandbox IKI CA.") \
            from exc
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise NotAuthenticated(AU_CERT_INVALID, "the client certificate is outside its validity period.")
    rows = session.execute(_HOLDER_OF_LOOKUP, {"lookup": f"crt:{certificate_fingerprint(certificate)}",
                                               "kind": "client_certificate"}).all()
    _active(rows[0] if rows else None, AU_CERT_UNKNOWN, "client certificate")
    return _holder(rows)


# --- authorisation -----------------------------------------------------------------------------------------

def _party_member(principal: Principal) -> None:
    if principal.organisation_id is not None and not principal.organisation_is_party:
        raise NotAuthorised(AZ_NOT_PARTY, f"{principal.organisation_name} is not a SEC Party; only the AROs of a "
                            "Party may use the SMKI services. A manufacturer obtains certificates through an "
                            "Authorised Subscriber that submits its CSRs.")


def require_aro(principal: Principal, policy: str) -> Appointed:
    """An approved ARO whose credentials are scoped to ``policy`` (organisation, device, repository)."""
    _party_member(principal)
    aros = [a for a in principal.appointments if a.role == "aro"]
    if not aros:
        raise NotAuthorised(AZ_NOT_ARO, "only an approved ARO may do this; your SRO can nominate you on an "
                            "ARO Nomination Form.")
    for aro in aros:
        if policy in aro.scopes:
            return aro
    held = ", ".join(sorted(aros[0].scopes)) or "nothing"
    raise NotAuthorised(AZ_SCOPE, f"your ARO credentials are scoped to {held}, not {policy} certificates; "
                        "ask your SRO to extend your scope.")


def require_acts_for(aro: Appointed, organisation_id: int, name: str | None = None) -> None:
    if organisation_id not in aro.acts_for:
        raise NotAuthorised(AZ_NOT_ACTING_FOR, f"you do not act for {name or f'organisation {organisation_id}'}; "
                            "an ARO acts only for the Authorised Subscribers named on its nomination.")


def require_sro(principal: Principal, organisation_id: int | None = None) -> Appointed:
    _party_member(principal)
    sros = [a for a in principal.appointments if a.role == "sro"]
    if not sros:
        raise NotAuthorised(AZ_NOT_SRO, "only the Party's Senior Responsible Officer may do this.")
    if organisation_id is None:
        return sros[0]
    for sro in sros:
        if sro.organisation_id == organisation_id:
            return sro
    raise NotAuthorised(AZ_OTHER_PARTY, "you are the SRO of another Party; an SRO acts only for its own Party.")


def require_operator(principal: Principal) -> Appointed:
    operator = principal.holds("ra_operator")
    if operator is None:
        raise NotAuthorised(AZ_NOT_OPERATOR, "only an RA operator may do this.")
    return operator
