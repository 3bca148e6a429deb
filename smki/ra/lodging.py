"""The RA's port to the SMKI Repository (RA -> repository is the allowed direction).

The Repository area owns storage and publication; the RA only calls ``lodge``, ``lodge_many`` and
``revoke`` on ``repository.store.CertificateRepository`` and the user/API-key functions of
``repository.access``. Certificates the issuance path has just issued are lodged from what it already
knows of them (:func:`facts_of`), in the transaction that records them (:class:`IssuedLodging`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from repository.access import RepositoryAccess as _RepositoryAccess
from repository.certificates import CertificateFacts, describe, serial_text
from repository.store import CertificateRepository
from smki.core.db import Database
from smki.issuance import IssuedCertificate

log = logging.getLogger(__name__)


class CertificateLodge(Protocol):
    available: bool

    def lodge(self, der: bytes, *, manufacturing_flag: bool, lodged_by: str) -> None: ...

    def revoke(self, serial: str, *, reason: str, at: dt.datetime, requested_by: str) -> None: ...

    def lodge_many(self, certificates: Sequence[tuple[bytes, bool]], *, lodged_by: str) -> None: ...

    def lodge_issued(self, connection: Connection | Session, issued: Sequence[tuple[IssuedCertificate, bool]], *,
                     lodged_by: str) -> None: ...


class RepositoryLodge:
    available = True  # a lodge a test replaces may say otherwise; the API reports it per release

    def __init__(self, repository: CertificateRepository) -> None:
        self.repository = repository

    def lodge(self, der: bytes, *, manufacturing_flag: bool, lodged_by: str) -> None:
        self.repository.lodge(der, status="I", manufacturing_flag=manufacturing_flag, lodged_by=lodged_by)

    def revoke(self, serial: str, *, reason: str, at: dt.datetime, requested_by: str) -> None:
        self.repository.revoke(serial, reason, at, requested_by)

    def lodge_many(self, certificates: Sequence[tuple[bytes, bool]], *, lodged_by: str) -> None:
        """(DER, ManufacturingFlag) pairs, lodged in one transaction per flag."""
        for flag in (False, True):
            ders = [der for der, manufacturing in certificates if manufacturing is flag]
            if ders:
                self.repository.lodge_many(ders, status="I", manufacturing_flag=flag, lodged_by=lodged_by)

    def lodge_issued(self, connection: Connection | Session, issued: Sequence[tuple[IssuedCertificate, bool]], *,
                     lodged_by: str) -> None:
        """Lodge certificates just issued, each with its ManufacturingFlag, in the caller's transaction
        (the one that records them): they are released together or not at all."""
        IssuedLodging(self.repository, lodged_by).within(connection, issued)


def lodge_for(database: Database) -> CertificateLodge:
    return RepositoryLodge(CertificateRepository(database))


def facts_of(issued: IssuedCertificate, issuers: dict[str, str]) -> CertificateFacts:
    """The Repository's record of a certificate the CA has just issued, from what the issuance path already
    knows (the request it approved, the ledger row), not by parsing the certificate again. ``issuers`` caches
    the issuer's RFC 4514 text by the ledger's issuer name: one CA signs a whole batch."""
    row = issued.ledger
    if issued.profile not in ("device", "organisation") or not row:
        return describe(issued.der)  # the CA certificates: a handful, described as any lodged certificate
    certificate = issued.certificate
    issuer = issuers.get(row["issuer_name"])
    if issuer is None:
        issuer = issuers[row["issuer_name"]] = certificate.issuer.rfc4514_string()
    device = issued.profile == "device"
    return CertificateFacts(
        serial=serial_text(certificate.serial_number), issuer=issuer,
        subject="" if device else certificate.subject.rfc4514_string(), kind=issued.profile,
        role=None if device else row["role_code"], usage="DS" if row["key_usage"] == "digitalSignature" else "KA",
        subject_eui=None if device else row["subject_id"], device_id=row["subject_id"] if device else None,
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        sha256=hashlib.sha256(issued.der).hexdigest(), der=issued.der)


class IssuedLodging:
    """Lodges what the issuance path has just issued, each with its ManufacturingFlag: :meth:`within` in the
    transaction that records the certificates (the Device CSR services' chunk), so a certificate and its
    Repository record commit together; calling it lodges in a transaction of its own."""

    def __init__(self, repository: CertificateRepository, lodged_by: str) -> None:
        self.repository = repository
        self.lodged_by = lodged_by

    def within(self, connection: Connection | Session, issued: Sequence[tuple[IssuedCertificate, bool]], *,
               fresh: bool = True) -> None:
        """Lodge in the caller's transaction, the one that records them: as they were just minted, no
        Repository row can exist for them yet, so they are inserted without a duplicate check."""
        issuers: dict[str, str] = {}
        for flag in (False, True):
            facts = [facts_of(certificate, issuers) for certificate, manufacturing in issued if manufacturing is flag]
            if facts:
                self.repository.lodge_many(facts, status="I", manufacturing_flag=flag, lodged_by=self.lodged_by,
                                           connection=connection, fresh=fresh)

    def __call__(self, issued: Sequence[tuple[IssuedCertificate, bool]]) -> None:
        """Lodge after the certificates were recorded, in a transaction of its own (idempotent)."""
        with self.repository.database.session() as session:
            self.within(session, issued, fresh=False)


def issued_lodging(database: Database, lodged_by: str) -> IssuedLodging:
    return IssuedLodging(CertificateRepository(database), lodged_by)


def repository_holder(organisation_name: str | None, person_id: int) -> str:
    """How the RA names a person to the Repository (one name for issuing and for revoking).

    The person id makes it unique; the Party's name is only a reading aid, so it is shortened to keep the
    whole name inside the Repository's 128-character holder column whatever the Party is called."""
    return f"party:{(organisation_name or 'none')[:80]}/person:{person_id}"


class RepositoryAccess:
    """Repository users and API keys: held by the Repository area, issued and revoked by the RA. Calls run
    in the Repository's own transactions, so the RA makes them after its own unit of work commits."""

    def __init__(self, database: Database) -> None:
        self.access = _RepositoryAccess(database)

    def issue_api_key(self, holder: str) -> str:
        return self.access.issue_api_key(holder)

    def create_user(self, username: str, password: str, holder: str) -> None:
        self.access.create_user(username, password, holder)

    def revoke_all(self, holder: str) -> int:
        return int(self.access.revoke_all(holder))


# Channels whose ledger rows are released by definition: the operator's own issuance, and the CA's.
RELEASED_BY_CHANNEL = ("operator", "bootstrap")
# Decision statuses meaning the issuance was audited and the certificate released (or due to be).
RELEASED_STATUSES = ("issued", "released")


def lodge_unlodged(database: Database, since: dt.datetime) -> int:
    """Lodge every released Organisation or Device certificate issued since ``since`` that the Repository
    lacks; returns how many. Lodging follows issuance outside its transaction, so a process stopped in
    between (a killed worker, a failed lodge) leaves a gap this closes. A certificate the RA never released
    (no audited issuance: decision still ``approved``) is left out, as ``smki audit verify`` reports it."""
    from sqlalchemy import select

    from repository.models import RepositoryCertificate
    from smki.models import IssuanceRecord
    from smki.ra.models import CsrDecision

    with database.session() as session:
        ledger = session.execute(select(IssuanceRecord.serial, IssuanceRecord.channel, IssuanceRecord.certificate_der)
                                 .where(IssuanceRecord.issued_at >= since,
                                        IssuanceRecord.profile.in_(("organisation", "device")))).all()
        present: set[str] = set()
        decided: dict[str, tuple[str, bool]] = {}
        for start in range(0, len(ledger), 900):  # under every driver's bound-parameter limit
            serials = [row.serial for row in ledger[start:start + 900]]
            present.update(session.execute(select(RepositoryCertificate.serial)
                                           .where(RepositoryCertificate.serial.in_(serials))).scalars())
            decided.update({serial: (status, flag) for serial, status, flag in session.execute(
                select(CsrDecision.serial, CsrDecision.status, CsrDecision.manufacturing_flag)
                .where(CsrDecision.serial.in_(serials))) if serial is not None})
    missing: list[tuple[bytes, bool]] = []
    for row in ledger:
        if row.serial in present:
            continue
        status, flag = decided.get(row.serial, ("", False))
        if row.channel in RELEASED_BY_CHANNEL or status in RELEASED_STATUSES:
            missing.append((row.certificate_der, flag))
    if missing:
        lodge_for(database).lodge_many(missing, lodged_by="ra:reconcile")
        log.info("lodged %d released certificates the Repository lacked", len(missing))
    return len(missing)
