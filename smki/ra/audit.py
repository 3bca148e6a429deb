"""The RA's append-only, hash-chained audit log.

Each record's hash covers the previous record's hash and the record's own canonical content, so
altering, removing or reordering any record breaks the chain from that point on. A one-row head
(sequence number and hash of the newest record) is updated in the same transaction as every append, so
cutting records off the end is detected as well.

Audit-before-effect: callers append inside the same transaction as the effect they record, and append
first, so the effect can never commit without its record (and a failed append rolls the effect back).
Where the effect lives in another transaction (issuance), see :mod:`smki.ra.service`.

Concurrency: every record extends the same head, so appenders take turns. A unit of work run by
:func:`audited` takes the chain's writer lock as its first statement (:func:`hold_chain`) and keeps it to
commit: on PostgreSQL ``SELECT ... FOR UPDATE`` of the head row, on SQLite ``BEGIN IMMEDIATE``, which takes
the database's writer lock before anything is read. Whatever the unit reads is then current (no other
appender can commit underneath it), so its checks hold when it writes and two concurrent units never
both act on the same state (two approvals of one form, two allocations of one User ID). A request that
arrives while another appends waits its turn; it does not fail. Transient refusals that remain possible
(a PostgreSQL deadlock, a SQLite lock held beyond the busy timeout) are retried whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from smki.core.db import Database
from smki.core.errors import SmkiError
from smki.ra.models import AuditHead, AuditRecord

GENESIS = "0" * 64
HEAD_ID = 1
APPEND_ATTEMPTS = 5
T = TypeVar("T")


class AuditUnavailable(SmkiError):
    """The audit record could not be written, so the action did not take effect (fail closed)."""

    status = 503  # the service cannot act without its audit trail; the same request may succeed later


class AuditConflict(Exception):
    """Another writer appended at the same moment; the whole unit of work is retried."""


def canonical_detail(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link_hash(prev_hash: str, seq: int, recorded_at: str, actor: str, action: str, subject: str | None,
              detail: str) -> str:
    body = json.dumps([seq, recorded_at, actor, action, subject, detail], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def append(session: Session, *, actor: str, action: str, subject: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record inside ``session``'s transaction. Flushed at once, so a failure surfaces
    before the caller applies the effect it records."""
    head = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()).scalar_one_or_none()
    prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    seq = prev_seq + 1
    recorded_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    detail_text = canonical_detail(detail or {})
    record = AuditRecord(seq=seq, recorded_at=recorded_at, actor=actor[:128], action=action,
                         subject=subject[:128] if subject else None, detail=detail_text, prev_hash=prev_hash,
                         hash=link_hash(prev_hash, seq, recorded_at, actor[:128], action,
                                        subject[:128] if subject else None, detail_text))
    try:
        session.add(record)
        if head is None:
            session.add(AuditHead(id=HEAD_ID, seq=seq, hash=record.hash))
        else:
            head.seq, head.hash = seq, record.hash
        session.flush()
    except (IntegrityError, OperationalError) as exc:
        raise AuditConflict(str(exc)) from exc
    return record


def hold_chain(session: Session) -> None:
    """Take the chain's writer lock for the rest of ``session``'s transaction; call it as the unit of
    work's first statement (on SQLite a transaction that has read cannot become the writer once another
    connection has written since). :func:`audited` does this for every unit it runs."""
    if session.get_bind().dialect.name == "sqlite":
        # pysqlite opens its transactions itself, lazily and DEFERRED, at the first write; opening it
        # explicitly first makes it IMMEDIATE (the busy timeout applies while waiting for the lock).
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    else:
        session.execute(select(AuditHead.id).where(AuditHead.id == HEAD_ID).with_for_update())


# PostgreSQL SQLSTATEs a unit of work may meet under concurrency and succeed on retrying:
# serialization_failure, deadlock_detected, lock_not_available.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def transient(error: DBAPIError) -> bool:
    """A refusal by the database that another attempt of the same unit of work can overcome."""
    if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    text = str(error.orig).lower()
    return isinstance(error, OperationalError) and ("locked" in text or "busy" in text)


def audited(database: Database, work: Callable[[Session], T], attempts: int = APPEND_ATTEMPTS) -> T:
    """Run ``work(session)`` (which appends its audit record first) as one unit of work holding the
    chain's writer lock, retrying the whole unit on a transient conflict. Fails closed with ``CA:AUD01``:
    nothing of the unit is committed."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with database.session() as session:
                hold_chain(session)
                return work(session)
        except AuditConflict as exc:
            last = exc
        except DBAPIError as exc:
            if not transient(exc):
                raise
            last = exc
    raise AuditUnavailable("CA:AUD01", "the audit record could not be written, so nothing was done; "
                           f"retry shortly ({type(last).__name__}).")


def record(database: Database, *, actor: str, action: str, subject: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record in its own transaction (committed when this returns)."""
    return audited(database, lambda session: append(session, actor=actor, action=action, subject=subject,
                                                    detail=detail))


@dataclass
class Verification:
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(database: Database) -> Verification:
    """Walk the chain from the first record: every sequence number present and in order, every link
    pointing at its predecessor's hash, every hash recomputing, and the head matching the last record."""
    result = Verification()
    with database.session() as session:
        expected_prev, expected_seq = GENESIS, 1
        for row in session.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars():
            result.records += 1
            if row.seq != expected_seq:
                result.problems.append(f"record {row.seq}: expected sequence number {expected_seq} "
                                       "(records removed or renumbered)")
            if row.prev_hash != expected_prev:
                result.problems.append(f"record {row.seq}: does not link to its predecessor "
                                       "(a record before it was altered, removed or reordered)")
            recomputed = link_hash(row.prev_hash, row.seq, row.recorded_at, row.actor, row.action, row.subject,
                                   row.detail)
            if recomputed != row.hash:
                result.problems.append(f"record {row.seq}: content does not match its hash (altered)")
            expected_prev, expected_seq = row.hash, row.seq + 1
        head = session.get(AuditHead, HEAD_ID)
        if head is None and result.records:
            result.problems.append("the chain head is missing")
        elif head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
            result.problems.append(f"the chain head names record {head.seq}, but the chain ends at record "
                                   f"{expected_seq - 1} (records removed from the end, or the head altered)")
    return result
