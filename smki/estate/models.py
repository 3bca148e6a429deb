"""Tables of the simulated device estate.

Sized for a million devices: a device is one row (its two private keys as 32-octet scalars, its Device
Certificates by serial, its anti-replay counters as a small JSON map, its faults as bit flags, its
trust-anchor cells as a small JSON list pointing at anchor certificates stored once in ``estate_anchor``: a few
dozen distinct certificates fill every cell of every device). No foreign keys to other areas' tables: Parties
by their RA organisation id, certificates by serial.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class EstateRun(Base):
    """One ``smki estate create``: what was asked, the plan every chunk follows, and how far it got."""

    __tablename__ = "estate_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_count: Mapped[int] = mapped_column(Integer)
    # its devices are numbered first_number .. first_number + device_count - 1
    first_number: Mapped[int] = mapped_column(Integer, unique=True)
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    # JSON: the type of each position in the mix, and per type its owners and the anchor of each cell
    plan: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)   # running, completed
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EstateChunk(Base):
    """A run of consecutive devices built and committed together; claimed under a lease so that one worker
    builds it, and marked done in the transaction that stores its devices."""

    __tablename__ = "estate_chunk"

    run_id: Mapped[int] = mapped_column(ForeignKey("estate_run.id"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_number: Mapped[int] = mapped_column(Integer)
    device_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), index=True)        # queued, claimed, done
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(10))
    error_text: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EstateAnchor(Base):
    """A certificate that trust-anchor cells hold (the root, the Recovery certificate, Organisation
    Certificates): stored once, whatever the number of cells that hold it."""

    __tablename__ = "estate_anchor"
    __table_args__ = (UniqueConstraint("serial", "issuer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(200))
    role: Mapped[int] = mapped_column(SmallInteger)                     # Remote Party Role code
    key_usage: Mapped[str] = mapped_column(String(16))
    subject_eui: Mapped[str | None] = mapped_column(String(16))        # the subject Entity Identifier
    subject_key_identifier: Mapped[str] = mapped_column(String(64))    # hex
    party_id: Mapped[int | None] = mapped_column(Integer)              # the owning Party (RA organisation id)
    der: Mapped[bytes] = mapped_column(LargeBinary)


class EstateDevice(Base):
    __tablename__ = "estate_device"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device_id: Mapped[str] = mapped_column(String(16), unique=True)    # EUI-64, upper-case hex
    device_type: Mapped[str] = mapped_column(String(16), index=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    supplier_party_id: Mapped[int | None] = mapped_column(Integer)
    network_operator_party_id: Mapped[int | None] = mapped_column(Integer)
    # The device's private keys as raw P-256 scalars: simulated devices, test material only.
    ds_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    ka_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    ds_serial: Mapped[str | None] = mapped_column(String(40))
    ka_serial: Mapped[str | None] = mapped_column(String(40))
    # Anti-replay counters per Remote Party Role: JSON {"<role code>": counter}
    counters: Mapped[str] = mapped_column(Text)
    faults: Mapped[int] = mapped_column(Integer, default=0)            # smki.estate.faults.Fault flags
    # The trust-anchor cells, keyed as GBCS keys them: JSON [[role code, key usage, cell usage (0 management,
    # 1 prePaymentTopUp), estate_anchor id or null, state], ...]. One row per device, not one per cell: the
    # command processor reads and rewrites a device's cells together, and nine rows per device would be nine
    # million for a million devices.
    cells: Mapped[str] = mapped_column(Text)
    # The state of the device's worst cell (tampered, stale, empty, replaced, installed), for counting.
    anchor_state: Mapped[str] = mapped_column(String(12), index=True)
    installed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Future-dated commands accepted and not yet run, as received: JSON ["<hex octets>", ...], or null. Kept on
    # the device's row (a device holds a handful at most), with the earliest execution time indexed so that a
    # sweep finds the devices with a command due without reading the others.
    pending: Mapped[str | None] = mapped_column(Text)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    alerts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")   # the device's alert counter


class EstateTestKey(Base):
    """TEST MATERIAL: the private key of an Organisation Certificate of a demo or drill Party, held so that the
    sandbox can sign and MAC commands as that Party (as DCC Boxed holds its test Parties' keys). The store
    refuses any Party not marked as demo or drill material in ``policies/estate.yaml`` (``test_parties``): a real
    Party's private keys never enter the sandbox."""

    __tablename__ = "estate_test_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[int] = mapped_column(Integer, index=True)          # RA organisation id
    role: Mapped[int] = mapped_column(SmallInteger)
    key_usage: Mapped[str] = mapped_column(String(16))
    cell_usage: Mapped[int] = mapped_column(SmallInteger)
    subject_eui: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str] = mapped_column(String(40), unique=True)         # the certificate of the key
    private_key: Mapped[bytes] = mapped_column(LargeBinary)              # raw P-256 scalar
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EstateSendRun(Base):
    """One ``smki estate send``: a CS02b command for each chosen device, sent in chunks under leases like estate
    creation, so that it resumes where it stopped and never sends a device a second command. What it sends is
    recorded (mode, roles, placements: public material only); the keys that sign are NOT: a run whose key only a
    ceremony holds (``holder`` = ``process``) is sent by the process holding that ceremony, never by a worker."""

    __tablename__ = "estate_send_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))                       # recovery, supplier, networkOperator, ...
    roles: Mapped[str] = mapped_column(Text)                            # JSON list of role names
    placements: Mapped[str] = mapped_column(Text)                       # JSON: {"supplier": "acb", "root": hex}
    # Every command of the run carries this originator counter and sequence number: a device that took one
    # refuses any second as a replay.
    counter: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the devices' clock, when fixed
    holder: Mapped[str] = mapped_column(String(10))                     # workers | process
    share_k: Mapped[int | None] = mapped_column(Integer)
    share_n: Mapped[int | None] = mapped_column(Integer)
    device_count: Mapped[int] = mapped_column(Integer)                  # devices chosen (before a share)
    chunk_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), index=True)        # running, completed
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EstateSendChunk(Base):
    """Devices numbered first_number .. last_number (or exactly ``numbers``, when the run names its devices),
    sent together: claimed under a lease, and marked done in the transaction that delivers their commands and
    stores their outcomes."""

    __tablename__ = "estate_send_chunk"

    run_id: Mapped[int] = mapped_column(ForeignKey("estate_send_run.id"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_number: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(Integer)
    numbers: Mapped[str | None] = mapped_column(Text)                   # JSON list, or null: the whole range
    state: Mapped[str] = mapped_column(String(10), index=True)          # queued, claimed, done, failed
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(10))
    error_text: Mapped[str | None] = mapped_column(Text)
    devices: Mapped[int] = mapped_column(Integer, default=0)            # devices sent to, once done
    summary: Mapped[str | None] = mapped_column(Text)                   # JSON: the chunk's part of the report
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EstateSendOutcome(Base):
    """What became of one device's command in a send run: recovered, refused, failed or not_sent, the code of a
    refusal, and the GBCS status of each cell from the verified response (JSON {cell name: status})."""

    __tablename__ = "estate_send_outcome"

    run_id: Mapped[int] = mapped_column(ForeignKey("estate_send_run.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    code: Mapped[str | None] = mapped_column(String(10))
    codes: Mapped[str] = mapped_column(Text)
