"""The web service's request log (AuditReference, holder, operation, answer), written in batches off the
request path.

A request hands its row to an in-process buffer and is answered at once; a flusher thread writes the
buffer in one multi-row INSERT when it holds ``flush_rows`` rows or ``flush_seconds`` after its first row,
whichever comes first, and once more when the process exits normally (gunicorn's graceful stop, Ctrl-C,
SIGTERM). The buffer is bounded: past ``max_pending`` rows the request that overfills it writes the batch
itself, so a database slower than the traffic slows requests rather than growing memory.

What ``kill -9`` (or a crash) of a web worker loses: the rows of at most the last ``flush_seconds`` (or
``flush_rows`` rows) of that worker's requests, which were answered but not yet written. The log feeds the
120%-of-forecast rule, a daily count per holder: a second of one worker's traffic per crash is far inside
that rule's 20% margin, and a caller who holds a lost AuditReference still had their answer. Where every
row must be durable before the answer, set ``flush_seconds: 0`` in ``policies/repository.yaml``: each row
is then written on the request path, as before (one INSERT and a commit per request).

The flusher runs only while rows are waiting and exits when the buffer is empty, so an idle process (or a
forked one, which inherits no threads) holds no thread; the next row starts one.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from repository.models import RepositoryRequestLog
from smki.core.batched_writes import BatchedWriter
from smki.core.db import Database
from smki.core.policyfiles.repository import RequestLog as RequestLogSettings  # policies/repository.yaml's section

log = logging.getLogger(__name__)


class RequestLog:
    def __init__(self, database: Database, settings: RequestLogSettings) -> None:
        self.database = database
        self.settings = settings
        self._batches: BatchedWriter[dict[str, Any]] = BatchedWriter(
            self._write, name="repository-request-log", flush_seconds=settings.flush_seconds,
            flush_rows=settings.flush_rows, max_pending=settings.max_pending)

    def record(self, audit_reference: str, holder: str | None, operation: str, response_code: int,
               detail: str | None = None) -> None:
        row = {"audit_reference": audit_reference, "holder": holder, "operation": operation,
               "response_code": response_code, "at": dt.datetime.now(dt.UTC),
               "detail": detail[:1000] if detail else None}
        if self.settings.flush_seconds <= 0:
            self._write([row], raise_errors=True)  # durable before the answer, as configured
            return
        self._batches.add(row)

    def flush(self) -> int:
        """Write every waiting row now; the number written. A failed write keeps its rows for the next."""
        return self._batches.flush()

    @property
    def pending(self) -> int:
        return self._batches.pending

    def _write(self, rows: Sequence[dict[str, Any]], *, raise_errors: bool = False) -> bool:
        try:
            with self.database.session() as session:
                session.execute(insert(RepositoryRequestLog), list(rows))
            return True
        except IntegrityError:
            # An AuditReference met twice (its random part is 36 bits): keep every other row of the batch.
            for row in rows:
                try:
                    with self.database.session() as session:
                        session.execute(insert(RepositoryRequestLog), [row])
                except IntegrityError:
                    log.warning("request-log row %s not written: its AuditReference is already logged",
                                row["audit_reference"])
            return True
        except SQLAlchemyError:
            if raise_errors:
                raise
            log.exception("could not write %d request-log rows; keeping them to retry", len(rows))
            return False


_logs: dict[str, RequestLog] = {}
_logs_lock = threading.Lock()


def request_log_for(database: Database, settings: RequestLogSettings) -> RequestLog:
    """The process's one request log for ``database``."""
    with _logs_lock:
        found = _logs.get(database.url)
        # the settings are read once per process, so the same object comes every time: compare by identity
        # before comparing every field
        if found is None or (found.settings is not settings and found.settings != settings):
            if found is not None:
                found.flush()
            found = _logs[database.url] = RequestLog(database, settings)
        return found


def flush_all() -> int:
    """Write every waiting row of every request log of this process (at exit, and for tests)."""
    with _logs_lock:
        logs = list(_logs.values())
    return sum(request_log.flush() for request_log in logs)


def _forget_in_child() -> None:
    """A forked process starts with no request log: the parent's waiting rows are the parent's to write,
    and its locks may have been held by a thread that does not exist here."""
    global _logs_lock
    _logs.clear()
    _logs_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


atexit.register(flush_all)  # a refused write is logged by the flush itself
