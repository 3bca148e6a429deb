"""Custody's tables: each key's custody (its sealed material and quorum), the commitments to the custodians'
shares, the PMA's decisions, the ceremonies and the shares presented at each.

No share and no key is stored in clear: the material is sealed under a KEK that exists only while a ceremony
holds a quorum; the shares are carried by the custodians, sealed under their passphrases; the custody keeps
only a keyed hash of each to tell a genuine share from a forged one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class Custody(Base):
    """One generation of one key's custody; re-sharing or a new key retires it for the next generation."""

    __tablename__ = "rc_custody"
    __table_args__ = (UniqueConstraint("key_name", "generation", name="uq_rc_custody_generation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_name: Mapped[str] = mapped_column(String(16))          # recovery | contingency
    generation: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | retired
    threshold: Mapped[int] = mapped_column(Integer)
    share_count: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[dict[str, str]] = mapped_column(JSON)       # label -> base64 of seal_under_key(kek, ...)
    public_key: Mapped[str] = mapped_column(Text)              # PEM, so the key in custody can be named
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CustodianShare(Base):
    """A custodian's place in a custody: which share index they carry, and its commitment."""

    __tablename__ = "rc_custodian_share"
    __table_args__ = (UniqueConstraint("custody_id", "appointment_id", name="uq_rc_custodian_share_custodian"),
                      UniqueConstraint("custody_id", "share_index", name="uq_rc_custodian_share_index"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    custody_id: Mapped[int] = mapped_column(ForeignKey("rc_custody.id"), index=True)
    appointment_id: Mapped[int] = mapped_column(Integer)       # the RA's key_custodian appointment
    organisation_id: Mapped[int] = mapped_column(Integer)
    custodian_name: Mapped[str] = mapped_column(String(200))
    share_index: Mapped[int] = mapped_column(Integer)
    commitment: Mapped[str] = mapped_column(String(64))


class PmaDecision(Base):
    """The SMKI PMA's decision that a key may be used (or re-shared, or replaced): one ceremony each."""

    __tablename__ = "rc_pma_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_name: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))           # use | reshare | new_key
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ceremony_id: Mapped[int | None] = mapped_column(Integer, unique=True)  # the ceremony that used it


class Ceremony(Base):
    __tablename__ = "rc_ceremony"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    custody_id: Mapped[int] = mapped_column(ForeignKey("rc_custody.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("rc_pma_decision.id"), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | closed
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    steps: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)


class Presentation(Base):
    """A share presented at a ceremony; the unique constraint refuses the same share twice, whatever the
    process that tries."""

    __tablename__ = "rc_presentation"
    __table_args__ = (UniqueConstraint("ceremony_id", "share_id", name="uq_rc_presentation_share"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ceremony_id: Mapped[int] = mapped_column(ForeignKey("rc_ceremony.id"), index=True)
    share_id: Mapped[int] = mapped_column(ForeignKey("rc_custodian_share.id"))
    presented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


