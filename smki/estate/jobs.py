"""Estate runs as jobs on the sandbox's job system: Huey, on the same queue store as the Device CSR services
(``SMKI_QUEUE_URL``, see :mod:`smki.devicecsr.jobs`) under a queue name of its own, so ``smki estate worker``
processes on any machine that reaches the database and the queue share a run's chunks.

As for Device CSR batches, the database arbitrates: a job only delivers a chunk's number; the chunk's lease
decides who builds it. Send runs (:mod:`smki.estate.send_runs`) share the queue: a send job carries a run id and a
chunk number, never a key, and only runs whose keys the sandbox holds (``holder="workers"``) are queued.
Each worker re-schedules unfinished chunks when it starts, and a periodic sweep those
whose lease ran out, so a run survives any worker being killed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from typing import Any

from huey import Huey, crontab

from smki.core import db
from smki.devicecsr.jobs import build_huey, queue_url
from smki.estate.send_runs import SendRuns
from smki.estate.service import EstateService
from smki.instance import Instance

log = logging.getLogger("smki.estate")
QUEUE_NAME = "smki-estate"


class EstateJobs:
    """The estate's tasks bound to one Huey; the service is built in the process that runs them."""

    def __init__(self, instance: Instance, huey: Huey) -> None:
        self.instance = instance
        self.huey = huey
        self._service: EstateService | None = None
        self._sends: SendRuns | None = None
        self._pid: int | None = None
        self._sends_pid: int | None = None
        self._origin_pid = os.getpid()
        self._connections_pid = os.getpid()
        self.chunk_task = huey.task(name="estate_chunk")(self._chunk)
        self.send_chunk_task = huey.task(name="estate_send_chunk")(self._send_chunk)
        self.sweep_task = huey.periodic_task(crontab(minute="*"), name="estate_sweep")(self._sweep)
        huey.on_startup("estate_recover")(self._recover)

    @classmethod
    def build(cls, instance: Instance, queue: str | None = None) -> EstateJobs:
        return cls(instance, build_huey(queue or queue_url(instance), QUEUE_NAME))

    @property
    def service(self) -> EstateService:
        if self._service is None or self._pid != os.getpid():
            self._forked()
            self._service, self._pid = EstateService(self.instance, self), os.getpid()
        return self._service

    def _forked(self) -> None:
        if self._connections_pid != os.getpid():
            db.forget_inherited_connections()  # a forked worker: never the parent's pooled connections
            self._connections_pid = os.getpid()

    @property
    def sends(self) -> SendRuns:
        if self._sends is None or self._sends_pid != os.getpid():
            self._forked()
            self._sends, self._sends_pid = SendRuns(self.instance, self), os.getpid()
        return self._sends

    def schedule_send_chunks(self, run_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None:
        for chunk in chunks:
            if eta is None:
                self.send_chunk_task(run_id, chunk)
            else:
                self.send_chunk_task.schedule((run_id, chunk), eta=eta)

    def schedule_chunks(self, run_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None:
        for chunk in chunks:
            if eta is None:
                self.chunk_task(run_id, chunk)
            else:
                self.chunk_task.schedule((run_id, chunk), eta=eta)

    def _chunk(self, run_id: int, chunk: int) -> None:
        self.service.build_chunk(run_id, chunk)

    def _send_chunk(self, run_id: int, chunk: int) -> None:
        self.sends.run_chunk(run_id, chunk)

    def _sweep(self) -> None:
        self.service.recover(stale_only=True)
        self.sends.recover(stale_only=True)

    def _recover(self) -> None:
        scheduled = self.service.recover()
        if scheduled:
            log.info("re-scheduled %d unfinished estate chunks", scheduled)
        sends = self.sends.recover()
        if sends:
            log.info("re-scheduled %d unfinished send chunks", sends)

    def run_pending(self, limit: int = 1_000_000) -> int:
        """Run queued (and due scheduled) jobs in this process until none is left, or ``limit`` have run:
        ``smki estate create --workers 0``, and tests. Returns how many ran."""
        ran = 0
        while ran < limit:
            for task in self.huey.read_schedule():
                self.huey.enqueue(task)
            task = self.huey.dequeue()
            if task is None:
                return ran
            self.huey.execute(task)
            ran += 1
        return ran

    def create_consumer(self, workers: int) -> Any:   # huey's Consumer (huey ships no types)
        return self.huey.create_consumer(workers=workers, worker_type="process", periodic=True,
                                         initial_delay=0.05, backoff=1.5, max_delay=0.2, check_worker_health=True)
