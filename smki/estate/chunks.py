"""Chunks of a run under leases: how estate creation (``EstateRun``/``EstateChunk``) and command sending
(``EstateSendRun``/``EstateSendChunk``) share a run's work among processes, in one place.

A chunk is ``queued``, ``claimed`` (under a lease token, until ``lease_until``), ``done`` or ``failed``. A worker
claims it with one conditional UPDATE; everything it then commits is conditional on its token, so a worker whose
lease ran out and was taken over commits nothing. A failed attempt hands the chunk back (``queued``) until
``MAX_ATTEMPTS``, then marks it ``failed`` for a person to look at; resuming a run queues its failed chunks
again. The database arbitrates: a job only delivers a chunk's number.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from smki.core.db import Database, rows_affected
from smki.core.times import now_utc, utc

log = logging.getLogger("smki.estate")

QUEUED, CLAIMED, DONE, FAILED = "queued", "claimed", "done", "failed"
RUNNING, COMPLETED = "running", "completed"
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ChunkCounts:
    """A run's chunks by state, the devices of its done chunks, and the first few failures (chunk, code, text)."""

    by_state: dict[str, int]
    devices_done: int
    failures: list[tuple[int, str, str]]


class LeasedChunks:
    """The lease operations on one kind of run and its chunks (``chunk_model`` has ``run_id``, ``chunk``,
    ``state``, ``lease_token``, ``lease_until``, ``attempts``, ``error_code``, ``error_text``; ``run_model`` has
    ``id``, ``status`` and ``completed_at``). ``devices`` is the chunk column that counts a done chunk's devices;
    ``what`` names the work in messages ("building", "sending")."""

    def __init__(self, database: Database, run_model: Any, chunk_model: Any, *, devices: Any, what: str,
                 failed_code: str) -> None:
        self.database = database
        self.run, self.chunk = run_model, chunk_model
        self.devices = devices
        self.what = what
        self.failed_code = failed_code   # the code a chunk that failed MAX_ATTEMPTS times is marked with

    def _this(self, run_id: int, chunk: int) -> Any:
        return and_(self.chunk.run_id == run_id, self.chunk.chunk == chunk)

    def claim(self, session: Session, run_id: int, chunk: int, lease: dt.timedelta) -> str | None:
        """Take the chunk if it is queued, or claimed under a lease that ran out; its new lease token, or None."""
        now, token = now_utc(), uuid.uuid4().hex
        claimed = rows_affected(session.execute(
            update(self.chunk)
            .where(self._this(run_id, chunk),
                   or_(self.chunk.state == QUEUED, and_(self.chunk.state == CLAIMED, self.chunk.lease_until < now)))
            .values(state=CLAIMED, lease_token=token, lease_until=now + lease, attempts=self.chunk.attempts + 1)))
        return token if claimed else None

    def fail(self, run_id: int, chunk: int, token: str, code: str, text: str) -> None:
        with self.database.session() as session:
            session.execute(update(self.chunk).where(self._this(run_id, chunk), self.chunk.lease_token == token)
                            .values(state=FAILED, lease_token=None, lease_until=None, error_code=code[:10],
                                    error_text=text))

    def release(self, run_id: int, chunk: int, token: str, attempts: int, *,
                reschedule: Callable[[], None] | None = None) -> None:
        """Hand a chunk whose attempt failed back to the queue (``reschedule`` then schedules it again), or mark
        it failed once it has failed ``MAX_ATTEMPTS`` times."""
        if attempts >= MAX_ATTEMPTS:
            self.fail(run_id, chunk, token, self.failed_code, f"{self.what} this chunk failed {attempts} times "
                      "(see the log); resume the run to try again.")
            return
        try:
            with self.database.session() as session:
                session.execute(update(self.chunk)
                                .where(self._this(run_id, chunk), self.chunk.lease_token == token,
                                       self.chunk.state == CLAIMED)
                                .values(state=QUEUED, lease_token=None, lease_until=None))
        except SQLAlchemyError:
            log.exception("could not release run %s chunk %s (%s); its lease will expire", run_id, chunk, self.what)
            return
        if reschedule is not None:
            reschedule()

    def complete_if_done(self, run_id: int) -> bool:
        """Mark the run completed once every chunk is done (once: a second caller changes nothing)."""
        with self.database.session() as session:
            undone = select(self.chunk.chunk).where(self.chunk.run_id == run_id, self.chunk.state != DONE).exists()
            return bool(rows_affected(session.execute(
                update(self.run).where(self.run.id == run_id, self.run.status == RUNNING, ~undone)
                .values(status=COMPLETED, completed_at=now_utc()))))

    def requeue_failed(self, session: Session, run_id: int) -> None:
        session.execute(update(self.chunk).where(self.chunk.run_id == run_id, self.chunk.state == FAILED)
                        .values(state=QUEUED, attempts=0, error_code=None, error_text=None))

    def due(self, run_id: int | None = None, *, stale_only: bool = False, runs: Any = None) -> dict[int, list[int]]:
        """Chunks of running runs (``runs``: a further condition on the run) that a worker should be given: queued
        ones, and those claimed under a lease that ran out (with ``stale_only``, only the latter: the periodic
        sweep). By run."""
        now = now_utc()
        with self.database.session() as session:
            statement = (select(self.chunk.run_id, self.chunk.chunk, self.chunk.state, self.chunk.lease_until)
                         .join(self.run, self.run.id == self.chunk.run_id)
                         .where(self.run.status == RUNNING, self.chunk.state.in_((QUEUED, CLAIMED))))
            if runs is not None:
                statement = statement.where(runs)
            if run_id is not None:
                statement = statement.where(self.chunk.run_id == run_id)
            rows = session.execute(statement).all()
        by_run: dict[int, list[int]] = {}
        for row in rows:
            until = utc(row.lease_until)
            expired = row.state == CLAIMED and until is not None and until < now
            if expired or (row.state == QUEUED and not stale_only):
                by_run.setdefault(row.run_id, []).append(row.chunk)
        return by_run

    def counts(self, session: Session, run_id: int) -> ChunkCounts:
        by_state: dict[str, int] = dict(session.execute(
            select(self.chunk.state, func.count()).where(self.chunk.run_id == run_id)
            .group_by(self.chunk.state)).all())
        done = int(session.scalar(select(func.coalesce(func.sum(self.devices), 0))
                                  .where(self.chunk.run_id == run_id, self.chunk.state == DONE)) or 0)
        failures = [(c, code or "", text or "") for c, code, text in session.execute(
            select(self.chunk.chunk, self.chunk.error_code, self.chunk.error_text)
            .where(self.chunk.run_id == run_id, self.chunk.state == FAILED).order_by(self.chunk.chunk).limit(10))]
        return ChunkCounts(by_state, done, failures)
