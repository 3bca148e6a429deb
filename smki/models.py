"""Tables of the issuance ledger: what the CA signed, and the CSRs it refused.

The ledger is the CA's own record, written by the issuance service: a row commits (serial, the
to-be-signed bytes, the certificate) before the certificate is handed to anyone. The Repository keeps
the published copy with its status; the ledger is what an auditor reconciles the Repository against.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class IssuanceRecord(Base):
    __tablename__ = "issuance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 16 octets as 32 upper-case hex digits; the database enforces uniqueness across every profile,
    # so no two certificates of this CA ever share a serial.
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    profile: Mapped[str] = mapped_column(String(32))
    issuer_name: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(16), index=True)  # EUI-64 or Device ID, hex
    key_usage: Mapped[str | None] = mapped_column(String(20))
    role_code: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(32))        # operator, portal, api, adhoc, batch, bootstrap
    requested_by: Mapped[str | None] = mapped_column(String(128))
    csr_sha256: Mapped[str | None] = mapped_column(String(64))
    tbs_sha256: Mapped[str] = mapped_column(String(64))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    # Indexed for the reconciliation that lodges what issuance did not (a window of recent rows).
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DeviceCertificateTally(Base):
    """How many Device Certificates the ledger holds for each Device ID, kept in the transaction that
    inserts the ledger rows (:func:`smki.issuance.record_issuance`).

    One row per device is what lets "fewer than N per Device ID" hold under concurrency without a
    global lock: the increment is a conditional upsert, so PostgreSQL locks only that device's row and a
    second writer for the same device waits for the first and then sees its count.
    """

    __tablename__ = "device_certificate_tally"
    # On SQLite the row lives in its primary key's b-tree: one page fewer written per committed certificate.
    __table_args__ = ({"sqlite_with_rowid": False},)

    device_id: Mapped[str] = mapped_column(String(16), primary_key=True)  # hex, as issuance.subject_id
    issued: Mapped[int] = mapped_column(Integer)


class CsrRejection(Base):
    __tablename__ = "csr_rejection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(128))
    csr_sha256: Mapped[str] = mapped_column(String(64))  # of the bytes as received
    code: Mapped[str] = mapped_column(String(10), index=True)
    message: Mapped[str] = mapped_column(Text)
