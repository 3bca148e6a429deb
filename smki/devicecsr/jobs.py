"""Background processing on Huey: an embedded SQLite queue by default (no server), or a shared
PostgreSQL or Redis queue so that workers on several machines share the work.

``SMKI_QUEUE_URL`` picks the queue: ``sqlite:///path`` (default: ``<instance>/devicecsr-queue.db``
when the database is SQLite), ``postgresql://...`` (default when the database is PostgreSQL: the same
database, tables ``devicecsr_queue_*``), or ``redis://host:port/db``.

Huey hands a job to one worker and forgets it, so a worker killed mid-job loses that job. Nothing is
lost for all that: the database records every step's claim (see :mod:`smki.devicecsr.batches`), each
worker re-schedules unfinished steps when it starts, and a periodic sweep re-schedules steps whose
lease ran out, so another worker picks them up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from huey import Huey, PostgresHuey, RedisHuey, crontab
from huey.storage import SqliteStorage

from smki.core import db
from smki.devicecsr.batches import BatchService
from smki.instance import Instance

log = logging.getLogger("smki.devicecsr")
QUEUE_NAME = "smki-devicecsr"


def queue_url(instance: Instance) -> str:
    explicit = instance.settings.queue_url
    if explicit:
        return explicit
    database = instance.settings.database_url
    if database.startswith("sqlite"):
        return f"sqlite:///{instance.settings.instance_dir / 'devicecsr-queue.db'}"
    return database


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (psycopg) takes it."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


class _SqliteQueueStorage(SqliteStorage):
    def _create_connection(self):
        connection = super()._create_connection()
        # NORMAL, as for the main database: in WAL mode it survives any process crash (kill -9), and
        # only an OS crash can lose the last jobs, which recovery re-schedules from the database anyway.
        # (The default, FULL, fsyncs every enqueue: 100 chunk jobs would cost more than parsing the batch.)
        connection.execute("pragma synchronous=1")
        return connection


def _postgres_huey(name: str, dsn: str) -> Huey:
    # Huey creates its tables with CREATE TABLE IF NOT EXISTS, which PostgreSQL does not make safe
    # against itself: two workers starting at once can collide on the catalogue. The loser retries,
    # and finds the tables there.
    for attempt in range(5):
        try:
            return PostgresHuey(name, dsn=dsn, results=False, table_prefix="devicecsr_queue")
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject):
            time.sleep(0.1 * (attempt + 1))
    return PostgresHuey(name, dsn=dsn, results=False, table_prefix="devicecsr_queue")


def build_huey(url: str, name: str = QUEUE_NAME) -> Huey:
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        path = Path(url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        return Huey(name, filename=str(path), results=False, storage_class=_SqliteQueueStorage)
    if scheme in ("postgresql", "postgres"):
        return _postgres_huey(name, libpq_url(url))
    if scheme in ("redis", "rediss"):
        return RedisHuey(name, url=url, results=False)
    raise ValueError(f"unsupported queue URL {url!r}: use sqlite:///..., postgresql://... or redis://...")


class DeviceCsrJobs:
    """The queue's tasks, bound to one Huey instance. ``service_factory`` builds the BatchService in
    the process that runs the task (worker processes build their own database engines)."""

    def __init__(self, huey: Huey, service_factory: Callable[[DeviceCsrJobs], BatchService]) -> None:
        self.huey = huey
        self._factory = service_factory
        self._service: BatchService | None = None
        self._pid: int | None = None
        self._origin_pid = os.getpid()
        self.parse_task = huey.task(name="devicecsr_parse")(self._parse)
        self.chunk_task = huey.task(name="devicecsr_chunk")(self._chunk)
        self.sweep_task = huey.periodic_task(crontab(minute="*"), name="devicecsr_sweep")(self._sweep)
        self.purge_task = huey.periodic_task(crontab(minute="17"), name="devicecsr_purge")(self._purge)
        huey.on_startup("devicecsr_recover")(self._recover)

    @property
    def service(self) -> BatchService:
        if self._service is None or self._pid != os.getpid():
            if os.getpid() != self._origin_pid:
                # A forked worker process: never share the parent's pooled database connections.
                for engine in list(db._engines.values()):
                    engine.dispose(close=False)
            self._service, self._pid = self._factory(self), os.getpid()
        return self._service

    # Scheduler protocol (used by BatchService)
    def schedule_parse(self, batch_id: int, eta: dt.datetime | None = None) -> None:
        if eta is None:
            self.parse_task(batch_id)
        else:
            self.parse_task.schedule((batch_id,), eta=eta)

    def schedule_chunks(self, batch_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None:
        for chunk in chunks:
            if eta is None:
                self.chunk_task(batch_id, chunk)
            else:
                self.chunk_task.schedule((batch_id, chunk), eta=eta)

    # Tasks
    def _parse(self, batch_id: int) -> None:
        self.service.parse(batch_id)

    def _chunk(self, batch_id: int, chunk: int) -> None:
        self.service.process_chunk(batch_id, chunk)

    def _sweep(self) -> None:
        self.service.recover(stale_only=True)

    def _purge(self) -> None:
        purged = self.service.purge()
        if purged:
            log.info("purged %d Device CSR batches past retention", purged)

    def _recover(self) -> None:
        scheduled = self.service.recover()
        if scheduled:
            log.info("re-scheduled %d unfinished Device CSR steps", scheduled)

    def run_pending(self, limit: int = 100_000) -> int:
        """Run queued (and due scheduled) jobs in this process until none is left: for tests and for
        a single-process rehearsal. Returns how many ran."""
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
