"""The RA's port to the SMKI Repository (RA -> repository is the allowed direction).

The Repository area owns storage and publication; the RA only calls ``lodge``, ``lodge_many`` and
``revoke`` on ``repository.store.CertificateRepository`` and the user/API-key functions of
``repository.access``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Protocol

from repository.access import RepositoryAccess as _RepositoryAccess
from repository.store import CertificateRepository
from smki.core.db import Database

log = logging.getLogger(__name__)


class CertificateLodge(Protocol):
    available: bool

    def lodge(self, der: bytes, *, manufacturing_flag: bool, lodged_by: str) -> None: ...

    def revoke(self, serial: str, *, reason: str, at: dt.datetime, requested_by: str) -> None: ...

    def lodge_many(self, certificates: Sequence[tuple[bytes, bool]], *, lodged_by: str) -> None: ...


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


def lodge_for(database: Database) -> CertificateLodge:
    return RepositoryLodge(CertificateRepository(database))


def repository_holder(organisation_name: str | None, person_id: int) -> str:
    """How the RA names a person to the Repository (one name for issuing and for revoking)."""
    return f"party:{organisation_name or 'none'}/person:{person_id}"


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
                .where(CsrDecision.serial.in_(serials)))})
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
