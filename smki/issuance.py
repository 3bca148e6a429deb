"""Issuance: a validated request goes to the CA, and the ledger row commits before anyone sees the result.

This is the one path by which certificates come into being. The RA calls it after its checks; the
operator command ``smki ca issue`` calls it directly and is recorded as channel ``operator``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smki.ca.authority import CertificationAuthority
from smki.ca.builder import CertificateRequest
from smki.ca.identifiers import serial_hex
from smki.core.db import Database
from smki.core.errors import CsrRejected, IssuanceFailed
from smki.core.policy import Policies, load_yaml
from smki.csr import CsrKind, ValidatedCsr, received_digest, validate
from smki.models import CsrRejection, IssuanceRecord

SERIAL_ATTEMPTS = 3


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    der: bytes
    serial: str
    profile: str
    csr: ValidatedCsr | None

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def request_for(csr: ValidatedCsr) -> CertificateRequest:
    if csr.kind == "device":
        return CertificateRequest("device", csr.public_key, key_usage=csr.key_usage, device_id=csr.device_id)
    assert csr.role is not None
    return CertificateRequest("organisation", csr.public_key, key_usage=csr.key_usage,
                              remote_party_role=csr.role.ou, entity_identifier=csr.entity_identifier,
                              trading_name=csr.trading_name)


def ledger_row(certificate: x509.Certificate, request: CertificateRequest, *, issuer_name: str,
               channel: str, requested_by: str | None, csr_sha256: str | None,
               now: dt.datetime) -> dict[str, Any]:
    """The ledger row for one certificate, as column values (inserted in bulk by :func:`record_issuance`)."""
    subject = request.device_id or request.entity_identifier
    role = request.remote_party_role
    return {
        "serial": serial_hex(certificate.serial_number), "profile": request.profile, "issuer_name": issuer_name,
        "subject_id": subject.hex if subject else None, "key_usage": request.key_usage,
        "role_code": int(role, 16) if role else None, "channel": channel, "requested_by": requested_by,
        "csr_sha256": csr_sha256, "tbs_sha256": hashlib.sha256(certificate.tbs_certificate_bytes).hexdigest(),
        "certificate_der": certificate.public_bytes(serialization.Encoding.DER), "issued_at": now,
    }


def record_issuance(connection: Connection | Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ledger rows in the caller's transaction as one executemany. At batch scale ORM objects
    and their unit-of-work bookkeeping cost more than the signing, so the ledger is written with Core."""
    if rows:
        connection.execute(insert(IssuanceRecord.__table__), list(rows))


def device_certificate_counts(session: Session, device_ids: Collection[str]) -> dict[str, int]:
    """How many Device Certificates the ledger holds for each Device ID (hex); absent IDs are left out."""
    wanted = sorted(set(device_ids))
    counts: dict[str, int] = {}
    table = IssuanceRecord.__table__
    for start in range(0, len(wanted), 900):  # stay under every driver's bound-parameter limit
        # Only subject_id in the WHERE clause, so the planner takes its index: with the profile there too,
        # PostgreSQL without fresh statistics scans every Device Certificate in the ledger, per call.
        rows = session.execute(select(table.c.subject_id, table.c.profile, func.count())
                               .where(table.c.subject_id.in_(wanted[start:start + 900]))
                               .group_by(table.c.subject_id, table.c.profile))
        counts.update({subject: count for subject, profile, count in rows if profile == "device"})
    return counts


def lint_before_release(policies: Policies) -> frozenset[str]:
    """The profiles whose certificates are linted before release (``policies/issuance.yaml``)."""
    path = policies.path("issuance.yaml")
    rules = load_yaml(path).get("lint_before_release", {}) if path.exists() else {}
    return frozenset(profile for profile, on in rules.items() if on)


def release_check(certificate: x509.Certificate, profile: str, policies: Policies) -> None:
    """Refuse to release a certificate the SMKI profile linter finds fault with."""
    from smki.lint.linter import lint_one
    from smki.lint.source import LoadedCertificate

    der = certificate.public_bytes(serialization.Encoding.DER)
    report = lint_one(LoadedCertificate("issued", 1, 1, der), policies, profile=profile)
    if report.errors:
        found = "; ".join(f"{f.code} {f.message}" for f in report.errors)
        raise IssuanceFailed("CA:E207", f"the {profile} certificate the CA produced fails the SMKI profile "
                             f"({found}); it was not released. This is an issuance anomaly: the RA must "
                             "correct the profile before retrying.")


class IssuanceService:
    def __init__(self, ca: CertificationAuthority, database: Database, policies: Policies) -> None:
        self.ca = ca
        self.database = database
        self.policies = policies
        self.linted_profiles = lint_before_release(policies)

    def validate(self, raw: bytes | str, *, channel: str, requested_by: str | None,
                 expected: CsrKind | None = None) -> ValidatedCsr:
        """Validate, and on rejection keep only the record of the rejection."""
        try:
            return validate(raw, self.policies, expected)
        except CsrRejected as rejection:
            self.record_rejection(raw, rejection, channel=channel, requested_by=requested_by)
            raise

    def record_rejection(self, raw: bytes | str, rejection: CsrRejected, *, channel: str,
                         requested_by: str | None) -> None:
        with self.database.session() as session:
            session.add(CsrRejection(received_at=dt.datetime.now(dt.UTC), channel=channel,
                                     requested_by=requested_by, csr_sha256=received_digest(raw),
                                     code=rejection.code, message=rejection.message))

    def issue(self, csr: ValidatedCsr, *, channel: str, requested_by: str | None) -> IssuedCertificate:
        return self.issue_many([csr], channel=channel, requested_by=requested_by)[0]

    def issue_many(self, csrs: Sequence[ValidatedCsr], *, channel: str,
                   requested_by: str | None) -> list[IssuedCertificate]:
        """Sign each request and commit every ledger row in one transaction before returning any.

        Serials are random; the unique constraint is the arbiter. On the (astronomically rare)
        collision the whole unit is re-signed with fresh serials, so nothing half-issued escapes.
        """
        requests = [request_for(csr) for csr in csrs]
        for _attempt in range(SERIAL_ATTEMPTS):
            now = dt.datetime.now(dt.UTC)
            issued, rows = [], []
            for csr, request in zip(csrs, requests, strict=True):
                certificate = self.ca.issue(request, now=now)
                if request.profile in self.linted_profiles:
                    release_check(certificate, request.profile, self.policies)
                issuer = self.policies.environment.ca_names[self.ca.issuer_of(request.profile)]
                row = ledger_row(certificate, request, issuer_name=issuer, channel=channel,
                                 requested_by=requested_by, csr_sha256=csr.sha256, now=now)
                rows.append(row)
                issued.append(IssuedCertificate(certificate, row["certificate_der"], row["serial"],
                                                request.profile, csr))
            try:
                with self.database.engine.begin() as connection:
                    record_issuance(connection, rows)
            except IntegrityError as error:
                if self._serials_taken([row["serial"] for row in rows]):
                    continue  # a collision: the unit was rolled back whole; sign it again with new serials
                raise IssuanceFailed("CA:E206", "the issuance ledger refused the certificate; nothing was "
                                     "issued. Retry, and report it if it persists.") from error
            return issued
        raise IssuanceFailed("CA:E205", "the CA could not allocate a unique serial; retry the request.")

    def _serials_taken(self, serials: list[str]) -> bool:
        table = IssuanceRecord.__table__
        with self.database.engine.connect() as connection:
            return connection.execute(select(table.c.serial).where(table.c.serial.in_(serials)).limit(1)).first() \
                is not None

    def issue_from_csr(self, raw: bytes | str, *, channel: str, requested_by: str | None = None,
                       expected: CsrKind | None = None) -> IssuedCertificate:
        csr = self.validate(raw, channel=channel, requested_by=requested_by, expected=expected)
        return self.issue(csr, channel=channel, requested_by=requested_by)
