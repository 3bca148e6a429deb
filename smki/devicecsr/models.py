"""Tables of the Device CSR services (SEC Appendix M): batches, their units of work, per-CSR outcomes,
the ad hoc transaction log, and the usage counted against the soft limits.

Exactly-once rests on two keys: a chunk of a batch is claimed under a lease (only the holder of the
lease token may finish it), and a CSR's outcome is keyed by (batch, position), so a CSR can have one
outcome at most. A chunk's outcomes, its ledger rows and its ``done`` mark commit in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class DeviceCsrBatch(Base):
    __tablename__ = "device_csr_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)          # the BatchId
    party_id: Mapped[str] = mapped_column(String(64), index=True)       # only this Party may read it
    subscriber: Mapped[str] = mapped_column(Text)                       # JSON snapshot of who submitted
    channel: Mapped[str] = mapped_column(String(16))                    # batch (web service) or portal (zip)
    reference: Mapped[str] = mapped_column(String(256))                 # SubmitCSRBatch ID or zip file name
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The content exactly as uploaded, and its digest taken at submission: parsing re-checks it (TAMPERED).
    # deferred= on the column, not deferred(): wrapped, the column loses NOT NULL from Mapped[bytes]
    payload: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    csr_count: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(10))
    error_text: Mapped[str | None] = mapped_column(Text)
    lease_token: Mapped[str | None] = mapped_column(String(64))        # who is parsing it
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    parsed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeviceCsrChunk(Base):
    """One unit of work: a run of consecutive CSRs of a batch, processed and committed together."""

    __tablename__ = "device_csr_chunk"

    batch_id: Mapped[int] = mapped_column(ForeignKey("device_csr_batch.id", ondelete="CASCADE"),
                                          primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))                      # queued, claimed, done
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # JSON list of [ID, CSR text, position of an identical earlier CSR or null]
    entries: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class DeviceCsrOutcome(Base):
    """The one outcome of one CSR of a batch; the primary key is what makes it one."""

    __tablename__ = "device_csr_outcome"

    batch_id: Mapped[int] = mapped_column(ForeignKey("device_csr_batch.id", ondelete="CASCADE"),
                                          primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    csr_ref: Mapped[str] = mapped_column(String(255))                   # DeviceCSR ID or .csr file name
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(10))
    error_text: Mapped[str | None] = mapped_column(Text)
    serial: Mapped[str | None] = mapped_column(String(32))              # the ledger row, when issued
    device_id: Mapped[str | None] = mapped_column(String(16))
    manufacturing_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceCsrTransaction(Base):
    """One call of the ad hoc Device CSR web service; its id is the response's TransactionId."""

    __tablename__ = "device_csr_adhoc"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str | None] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(10))
    serial: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DeviceCsrUsage(Base):
    """What a Party did, counted against the soft limits of the real service."""

    __tablename__ = "device_csr_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))          # adhoc, batch_csrs, portal_csrs, poll
    quantity: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    exceeded: Mapped[str | None] = mapped_column(String(64))  # the limit it went past, if any
