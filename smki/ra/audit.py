"""The RA's append-only, hash-chained audit log.

Each record's hash covers the previous record's hash and the record's own canonical content, so
altering, removing or reordering any record breaks the chain from that point on. A one-row head
(sequence number and hash of the newest record) is updated in the same transaction as every append, so
cutting records off the end is detected as well.

Audit-before-effect: callers append inside the same transaction as the effect they record, and append
first, so the effect can never commit without its record (and a failed append rolls the effect back).
Issuance is no exception: the decision, its records, the ledger row and the Repository's record are one
unit of work (see :mod:`smki.ra.service`).

Concurrency: every record extends the same head, so appenders take turns. A unit of work run by
:func:`audited` takes the chain's writer lock as its first statement (:func:`hold_chain`) and keeps it to
commit: on PostgreSQL ``SELECT ... FOR UPDATE`` of the head row, on SQLite ``BEGIN IMMEDIATE``, which takes
the database's writer lock before anything is read. Whatever the unit reads is then current (no other
appender can commit underneath it), so its checks hold when it writes and two concurrent units never
both act on the same state (two approvals of one form, two allocations of one User ID). A request that
arrives while another appends waits its turn; it does not fail (on SQLite it queues on a file lock first,
see :func:`writers_queue`). Transient refusals that remain possible (a PostgreSQL deadlock, a SQLite lock
held beyond the busy timeout) are retried whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from smki.core.db import Database

try:
    import fcntl
except ImportError:  # not on Windows: writers wait in SQLite's busy handler alone there
    fcntl = None  # type: ignore[assignment]
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


@dataclass(frozen=True)
class Entry:
    """One record to append: who did what, to what, with which particulars."""

    actor: str
    action: str
    subject: str | None = None
    detail: dict[str, Any] | None = None


_RECORDS = cast(Table, AuditRecord.__table__)
_HEAD = cast(Table, AuditHead.__table__)
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == HEAD_ID)
_APPEND = insert(_RECORDS)
_HELD_HEAD = "smki.audit.held_head"


def append(session: Session, *, actor: str, action: str, subject: str | None = None,
           detail: dict[str, Any] | None = None) -> int:
    """Append one record inside ``session``'s transaction; returns its sequence number. Written at once,
    so a failure surfaces before the caller applies the effect it records."""
    return append_many(session, [Entry(actor, action, subject, detail)])[-1]


def append_many(session: Session, entries: Sequence[Entry]) -> list[int]:
    """Append records in order inside ``session``'s transaction, reading and moving the head once; returns
    their sequence numbers. Core statements, not ORM objects: the chain is written on every decision, and
    the ORM's unit-of-work bookkeeping cost more than the statements themselves."""
    try:
        # the head as hold_chain read it under the lock, once (a later append reads it again)
        head = session.info.pop(_HELD_HEAD, None) or session.execute(_READ_HEAD).first()
        prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
        rows: list[dict[str, Any]] = []
        seqs: list[int] = []
        for entry in entries:
            seq = prev_seq + 1
            recorded_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            actor, subject = entry.actor[:128], entry.subject[:128] if entry.subject else None
            detail_text = canonical_detail(entry.detail or {})
            digest = link_hash(prev_hash, seq, recorded_at, actor, entry.action, subject, detail_text)
            rows.append({"seq": seq, "recorded_at": recorded_at, "actor": actor, "action": entry.action,
                         "subject": subject, "detail": detail_text, "prev_hash": prev_hash, "hash": digest})
            prev_seq, prev_hash = seq, digest
            seqs.append(seq)
        if not rows:
            return []
        session.execute(_APPEND, rows[0] if len(rows) == 1 else rows)
        if head is None:
            session.execute(insert(_HEAD), {"id": HEAD_ID, "seq": prev_seq, "hash": prev_hash})
        else:
            session.execute(_MOVE_HEAD, {"seq": prev_seq, "hash": prev_hash})
    except (IntegrityError, OperationalError) as exc:
        raise AuditConflict(str(exc)) from exc
    return seqs


def hold_chain(session: Session) -> None:
    """Take the chain's writer lock for the rest of ``session``'s transaction; call it as the unit of
    work's first statement (on SQLite a transaction that has read cannot become the writer once another
    connection has written since). :func:`audited` does this for every unit it runs."""
    if session.get_bind().dialect.name == "sqlite":
        # pysqlite opens its transactions itself, lazily and DEFERRED, at the first write; opening it
        # explicitly first makes it IMMEDIATE (the busy timeout applies while waiting for the lock).
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    else:
        # the lock is the head row's; what it reads saves the unit's first append reading it again
        session.info[_HELD_HEAD] = session.execute(_READ_HEAD).first()


# PostgreSQL SQLSTATEs a unit of work may meet under concurrency and succeed on retrying:
# serialization_failure, deadlock_detected, lock_not_available.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def transient(error: DBAPIError) -> bool:
    """A refusal by the database that another attempt of the same unit of work can overcome."""
    if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    text = str(error.orig).lower()
    return isinstance(error, OperationalError) and ("locked" in text or "busy" in text)


_queue_paths: dict[str, str | None] = {}
_queued = threading.local()


def _queue_path(database: Database) -> str | None:
    """The file beside a SQLite database on which its writers queue (None: not a SQLite file)."""
    if database.url not in _queue_paths:
        url = database.engine.url
        name = url.database
        local = url.get_backend_name() == "sqlite" and name and name != ":memory:" and not name.startswith("file:")
        _queue_paths[database.url] = f"{name}-writers" if local and fcntl is not None else None
    return _queue_paths[database.url]


@contextmanager
def writers_queue(database: Database) -> Iterator[None]:
    """On SQLite, queue for the database's writer lock on an advisory file lock beside it, across threads
    and processes, before ``BEGIN IMMEDIATE``. SQLite's own lock stays the guarantee; this is for latency:
    a connection refused SQLite's lock sleeps in its busy handler by growing steps (1, 2, 5, 10 ... 100 ms)
    and so wakes long after the lock was freed, while a process blocked in ``flock`` is woken the moment
    it is released. Concurrent clients were seen waiting hundreds of milliseconds for a lock held for one."""
    path = _queue_path(database)
    if path is None or getattr(_queued, "held", False):  # a unit run inside another already holds it
        yield
        return
    assert fcntl is not None
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _queued.held = True
        try:
            yield
        finally:
            _queued.held = False
    finally:
        os.close(descriptor)  # which releases the lock


def audited(database: Database, work: Callable[[Session], T], attempts: int = APPEND_ATTEMPTS) -> T:
    """Run ``work(session)`` (which appends its audit record first) as one unit of work holding the
    chain's writer lock, retrying the whole unit on a transient conflict. Fails closed with ``CA:AUD01``:
    nothing of the unit is committed."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with writers_queue(database), database.session() as session:
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
           detail: dict[str, Any] | None = None) -> int:
    """Append one record in its own transaction (committed when this returns); its sequence number."""
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
