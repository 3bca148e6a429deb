"""Tables of the SMKI Repository (migration ``0002_repository``).

The certificate table is narrow and indexed for the searches Appendix O needs; each equality index ends
in ``id`` so a filtered search reads its page in index order (cursor pagination without a sort).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from smki.core.db import Base


class RepositoryCertificate(Base):
    __tablename__ = "repository_certificate"
    __table_args__ = (
        UniqueConstraint("serial", "issuer", name="uq_repository_certificate_serial_issuer"),
        Index("ix_repository_certificate_device_id_id", "device_id", "id"),
        Index("ix_repository_certificate_subject_eui_id", "subject_eui", "id"),
        Index("ix_repository_certificate_status_id", "status", "id"),
        Index("ix_repository_certificate_role_id", "role", "id"),
        Index("ix_repository_certificate_usage_id", "usage", "id"),
        Index("ix_repository_certificate_issuer_id", "issuer", "id"),
        Index("ix_repository_certificate_kind_id", "kind", "id"),
        Index("ix_repository_certificate_not_before", "not_before"),
        Index("ix_repository_certificate_not_after", "not_after"),
        Index("ix_repository_certificate_lodged_at", "lodged_at"),
        Index("ix_repository_certificate_updated_at", "updated_at"),
        # Retrieval by serial alone, the commonest, and lodging's conflict check both use the unique
        # (serial, issuer) index: serial is its first column, so a second index on serial served no query.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64))          # upper-case hex, whole octets
    issuer: Mapped[str] = mapped_column(String(255))         # RFC 4514 string of the issuer DN
    kind: Mapped[str] = mapped_column(String(16))            # organisation, device, oca, dca
    status: Mapped[str] = mapped_column(String(1))           # P I N E R
    role: Mapped[int | None] = mapped_column(Integer)        # decimal Remote Party Role
    usage: Mapped[str | None] = mapped_column(String(2))     # DS or KA
    subject_eui: Mapped[str | None] = mapped_column(String(16))  # Organisation subject EUI-64, hex
    device_id: Mapped[str | None] = mapped_column(String(16))    # Device ID (hwSerialNum), hex
    subject: Mapped[str] = mapped_column(String(255))
    manufacturing_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    lodged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lodged_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # drives delta extracts


class RepositoryRevocation(Base):
    """The index of revoked certificates the CRL and ARL are generated from (never a table scan)."""

    __tablename__ = "repository_revocation"
    # covering index: the CRL is read from the index alone, never from the table
    __table_args__ = (Index("ix_repository_revocation_list_id", "revocation_list", "id", "serial", "revoked_at",
                            "reason"),
                      Index("ix_repository_revocation_recorded_at", "recorded_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("repository_certificate.id", ondelete="CASCADE"), unique=True)
    serial: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(255))
    revocation_list: Mapped[str | None] = mapped_column(String(16))  # crl, arl, or None (not listed)
    reason: Mapped[str] = mapped_column(String(32))                  # RFC 5280 ReasonFlags value
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str | None] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PublishedRevocationList(Base):
    """Each signed CRL or ARL; (list, number) unique keeps cRLNumber strictly monotonic per list."""

    __tablename__ = "repository_crl"
    __table_args__ = (UniqueConstraint("revocation_list", "number", name="uq_repository_crl_list_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revocation_list: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    this_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entries: Mapped[int] = mapped_column(Integer)
    covers_revocation_id: Mapped[int] = mapped_column(Integer)  # newest revocation row it includes
    der: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RepositoryExtract(Base):
    __tablename__ = "repository_extract"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))   # full or delta
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RepositorySyncState(Base):
    """In a local copy: how far the applied extracts reach, so a delta can only follow its predecessor."""

    __tablename__ = "repository_sync_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(255), unique=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applied: Mapped[int] = mapped_column(Integer)


class LodgedDocument(Base):
    __tablename__ = "repository_document"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_repository_document_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(128))
    file_name: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    lodged_by: Mapped[str] = mapped_column(String(128))
    lodged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # ``all``, or the Repository roles that may read it, sorted and comma-separated (repository.audience);
    # migration 0015 gave documents lodged before it ``all``
    audience: Mapped[str] = mapped_column(String(255), default="all", server_default="all")


class RepositoryUser(Base):
    __tablename__ = "repository_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    holder: Mapped[str] = mapped_column(String(128), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failure_window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the user's Repository roles (repository.audience.ROLES), sorted and comma-separated; None for none
    roles: Mapped[str | None] = mapped_column(String(255))


class RepositoryApiKey(Base):
    __tablename__ = "repository_api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # keys are random: a hash suffices
    prefix: Mapped[str] = mapped_column(String(16))                    # shown to people, never secret
    holder: Mapped[str] = mapped_column(String(128), index=True)
    may_lodge_documents: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RepositorySession(Base):
    """Portal sessions held server-side: the cookie carries a random token, the table only its hash."""

    __tablename__ = "repository_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("repository_user.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RepositoryRequestLog(Base):
    """One row per web-service request: the AuditReference, and the counts behind the 120% forecast rule."""

    __tablename__ = "repository_request"
    __table_args__ = (Index("ix_repository_request_holder_at", "holder", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_reference: Mapped[str] = mapped_column(String(64), unique=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(32))
    response_code: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    detail: Mapped[str | None] = mapped_column(Text)
