"""Tables of the Registration Authority: organisations, people and their appointments, credentials,
RAPP form submissions, device provisioning states, CSR decisions, and the hash-chained audit log.

No foreign keys to other areas' tables: the RA refers to certificates by serial (hex) only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class Organisation(Base):
    """A SEC Party, a Registration Data Provider, or an organisation that is not a Party (a device
    manufacturer). Only a Party can ever be an Authorised Subscriber."""

    __tablename__ = "ra_organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    company_number: Mapped[str | None] = mapped_column(String(20))
    registered_address: Mapped[str | None] = mapped_column(Text)
    # large_supplier, small_supplier, electricity_network, gas_network, other, dcc, manufacturer
    category: Mapped[str] = mapped_column(String(32))
    is_party: Mapped[bool] = mapped_column(Boolean, default=True)
    is_rdp: Mapped[bool] = mapped_column(Boolean, default=False)
    srept_passed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserIdentifier(Base):
    """The EUI-64 User ID centrally allocated to a Party for one User Role (or one of the DCC's own
    roles, user_role 'DCC')."""

    __tablename__ = "ra_user_id"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    user_role: Mapped[str] = mapped_column(String(8))
    eui64: Mapped[str] = mapped_column(String(16), unique=True)  # upper-case compact hex
    label: Mapped[str | None] = mapped_column(String(64))


class Authorisation(Base):
    """Authorised Subscriber status of a Party under one Certificate Policy."""

    __tablename__ = "ra_authorisation"
    __table_args__ = (UniqueConstraint("organisation_id", "policy"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    policy: Mapped[str] = mapped_column(String(16))  # organisation | device
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Person(Base):
    __tablename__ = "ra_person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Appointment(Base):
    """A person in a role for an organisation: director, secretary, sro, aro, ra_operator, pma,
    code_admin. Status follows the RAPP workflow: submitted -> verified -> approved | rejected;
    approved -> withdrawn."""

    __tablename__ = "ra_appointment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("ra_person.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("ra_organisation.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    scope_organisation: Mapped[bool] = mapped_column(Boolean, default=False)
    scope_device: Mapped[bool] = mapped_column(Boolean, default=False)
    scope_repository: Mapped[bool] = mapped_column(Boolean, default=False)
    acts_for: Mapped[list[int]] = mapped_column(JSON, default=list)  # organisation ids (Authorised Subscribers)
    identity_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    screening_passed: Mapped[bool] = mapped_column(Boolean, default=False)  # BS 7858
    reason: Mapped[str | None] = mapped_column(Text)
    submission_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Credential(Base):
    """How a person (or a system acting under an ARO) proves who it is. Only hashes and fingerprints
    are stored: an API token is shown once, at issue."""

    __tablename__ = "ra_credential"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("ra_person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # api_token | client_certificate
    lookup: Mapped[str] = mapped_column(String(96), unique=True)  # token id, certificate SHA-256, or username
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    label: Mapped[str | None] = mapped_column(String(128))  # e.g. the system name of an IKI system certificate
    serial: Mapped[str | None] = mapped_column(String(40))  # IKI certificate serial
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FormSubmission(Base):
    __tablename__ = "ra_form_submission"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form: Mapped[str] = mapped_column(String(48), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_by: Mapped[int | None] = mapped_column(Integer)  # person id; None for a paper/anonymous form
    organisation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Device(Base):
    """What the RA knows of a device's provisioning state (SEC L3.16). A Device ID it has never seen is
    treated as not yet installed."""

    __tablename__ = "ra_device"

    device_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(24))  # pre_installation | installed | decommissioned
    responsible_organisation_id: Mapped[int | None] = mapped_column(Integer)
    manufacturer_organisation_id: Mapped[int | None] = mapped_column(Integer)
    dcc_owned: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CsrDecision(Base):
    """Every CSR the RA decided on: allowed or refused, and the rule that decided it."""

    __tablename__ = "ra_csr_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # organisation | device
    csr_sha256: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(16), index=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    credential_id: Mapped[int | None] = mapped_column(Integer)
    subscriber_organisation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    manufacturer_organisation_id: Mapped[int | None] = mapped_column(Integer)
    manufacturing_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24))  # refused | approved | issued | released | rejected_by_subscriber
    serial: Mapped[str | None] = mapped_column(String(32), index=True)


class AuditRecord(Base):
    """One link of the append-only audit chain: hash = SHA-256(prev_hash || canonical record)."""

    __tablename__ = "ra_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(40))  # ISO 8601 text, hashed exactly as stored
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The newest link, updated in the same transaction as each append, so that removing records from
    the end of the chain is detected too."""

    __tablename__ = "ra_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
