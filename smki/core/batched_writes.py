"""Rows written in batches off the request path: the one mechanism behind the Repository's request log and the
SREPT recorder.

A request hands its item to an in-process buffer and is answered at once; a flusher thread writes the buffer
when it holds ``flush_rows`` items or ``flush_seconds`` after its first, whichever comes first. The buffer is
bounded: past ``max_pending`` items the request that overfills it writes the batch itself, so a database slower
than the traffic slows requests rather than growing memory. A refused write keeps the batch, oldest first and
never more than ``max_pending``, for the next attempt, with the flusher backing off (doubling, up to
``MAX_RETRY_SECONDS``). The flusher runs only while items wait and exits when the buffer is empty, so an idle or
forked process holds no thread. What a crash loses: the items of the last ``flush_seconds``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
MAX_RETRY_SECONDS = 30.0
T = TypeVar("T")


class BatchedWriter(Generic[T]):
    """``write(batch) -> bool`` writes a batch (True), or says it could not (False: the batch is kept)."""

    def __init__(self, write: Callable[[Sequence[T]], bool], *, name: str, flush_seconds: float, flush_rows: int,
                 max_pending: int) -> None:
        self._write = write
        self.name = name
        self.flush_seconds, self.flush_rows, self.max_pending = flush_seconds, flush_rows, max_pending
        self._pending: list[T] = []
        self._lock = threading.Lock()           # guards _pending and _flusher
        self._writing = threading.Lock()        # one batch written at a time, in order
        self._full = threading.Event()
        self._flusher: threading.Thread | None = None

    def add(self, item: T) -> None:
        with self._lock:
            self._pending.append(item)
            waiting = len(self._pending)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_while_pending, name=self.name, daemon=True)
                self._flusher.start()
        if waiting >= self.max_pending:
            self.flush()
        elif waiting >= self.flush_rows:
            self._full.set()

    def flush(self) -> int:
        """Write every waiting item now; the number written (0 when the write was refused: they wait on)."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            if self._write(batch):
                return len(batch)
            with self._lock:  # kept, oldest first, for the next attempt; never more than the bound
                self._pending[:0] = batch
                dropped = len(self._pending) - self.max_pending
                if dropped > 0:
                    del self._pending[:dropped]
                    log.error("%s: dropped %d items the database has refused for too long", self.name, dropped)
            return 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def _flush_while_pending(self) -> None:
        delay = self.flush_seconds
        while True:
            self._full.wait(delay)
            self._full.clear()
            written = self.flush()
            with self._lock:
                if not self._pending:
                    self._flusher = None
                    return
            # items are still waiting: either more arrived, or the database refused them (then back off)
            delay = self.flush_seconds if written else min(delay * 2, MAX_RETRY_SECONDS)
