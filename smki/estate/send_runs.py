"""Send runs (issue 13 item 6): a CS02b command for each chosen device, sent in chunks that resume where they
stopped and never send a device a second command.

A run stores what it sends (:class:`smki.estate.sending.Order`: mode, roles, placements, counter: public
material only) and is cut into chunks of devices by number. A sender claims a chunk with a conditional UPDATE
that takes a lease, builds and signs the chunk's commands, and then, in ONE transaction, marks the chunk done
(conditional on its lease token, first: a sender whose lease was taken over commits nothing), delivers the
commands (the devices' new cells and counters), and stores each device's outcome. A sender killed at any moment
leaves the chunk whole or untouched, so a resumed run sends every device exactly one command; a second would in
any case be refused by the device's anti-replay, since every command of a run carries the same counter.

Where chunks run: a run whose keys the sandbox holds (the key store's Recovery key while it is not in custody,
the test keys of demo and drill Parties) is ``holder="workers"``: its chunks are jobs on the estate's Huey queue
(:class:`smki.estate.jobs.EstateJobs`), and any ``smki estate worker`` shares them. A run that needs a key only a
key ceremony holds (the Recovery or Contingency key in custody, the plaintext symmetric key) is
``holder="process"``: the key never reaches the database or the queue (jobs carry only a run id and a chunk
number), and the chunks are sent by the process holding the ceremony (:meth:`SendRuns.run_here`); resuming it
needs a ceremony again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, func, insert, or_, select, update

from smki.core.db import rows_affected
from smki.core.driver_sql import insert_rows
from smki.core.errors import SmkiError
from smki.core.times import now_utc, utc
from smki.estate.chunks import CLAIMED, DONE, FAILED, QUEUED, RUNNING, LeasedChunks
from smki.estate.models import EstateAnchor, EstateDevice, EstateSendChunk, EstateSendOutcome, EstateSendRun
from smki.estate.plan import EstateError
from smki.estate.processing import deliver_within
from smki.estate.sending import (
    NOT_SENT,
    Checked,
    CommandSender,
    Device,
    DeviceOutcome,
    Keys,
    Order,
    SendReport,
    device_ids_of,
    keys_of_device,
)
from smki.instance import Instance

log = logging.getLogger("smki.estate")

WORKERS, PROCESS = "workers", "process"
UNKNOWN_RUN = "ES:SRN1"
CHUNK_FAILED = "ES:SRN3"
NO_DEVICES = "ES:DEV1"
RETRY_DELAY = dt.timedelta(seconds=2)
_LOOKUP = 500   # Device IDs per IN query when a run names its devices
_OUTCOMES = cast(Table, EstateSendOutcome.__table__)
_OUTCOME_COLUMNS = ("run_id", "device_id", "status", "code", "codes")


class SendScheduler(Protocol):
    def schedule_send_chunks(self, run_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None: ...


@dataclass(frozen=True)
class SendProgress:
    run_id: int
    status: str
    mode: str
    holder: str
    device_count: int
    devices_done: int
    chunk_count: int
    chunks_done: int
    chunks_failed: int
    failures: list[tuple[int, str, str]] = field(default_factory=list)   # (chunk, code, text)

    @property
    def settled(self) -> bool:
        return self.chunks_done + self.chunks_failed >= self.chunk_count


@dataclass(frozen=True)
class _Run:
    order: Order
    holder: str
    share: tuple[int, int] | None


class SendRuns:
    def __init__(self, instance: Instance, scheduler: SendScheduler | None = None,
                 sender: CommandSender | None = None) -> None:
        self.instance = instance
        self.database = instance.database
        self.scheduler = scheduler
        self.sender = sender or CommandSender(instance)
        self.lease = dt.timedelta(seconds=instance.policies.estate.lease_seconds)
        self.chunks = LeasedChunks(self.database, EstateSendRun, EstateSendChunk, devices=EstateSendChunk.devices,
                                   what="sending", failed_code=CHUNK_FAILED)
        self._runs: dict[int, _Run] = {}

    # --- creating a run ----------------------------------------------------------------------------------

    def create(self, order: Order, device_ids: Iterable[str] | None = None, *, share: tuple[int, int] | None = None,
               chunk_size: int = 500, holder: str = WORKERS, requested_by: str = "smki estate send") -> int:
        """Store a run of ``order`` for ``device_ids`` (default: every device of the estate; with ``share`` (k, n)
        only those numbered k modulo n) and, for a ``workers`` run, schedule its chunks; returns its id."""
        if share is not None and not 0 <= share[0] < share[1]:
            raise EstateError("ES:SND1", f"a share is (k, n) with 0 <= k < n, not {share}", field="share")
        if chunk_size < 1:
            raise EstateError("ES:SND1", f"a chunk is at least one device, not {chunk_size}", field="chunk_size")
        if holder not in (WORKERS, PROCESS):
            raise EstateError("ES:SND1", f"a run is sent by {WORKERS} or by this {PROCESS}, not {holder!r}")
        with self.database.session() as session:
            chunks: list[dict[str, Any]]
            if device_ids is not None:
                wanted = device_ids_of(device_ids)
                numbers: list[int] = []
                for start in range(0, len(wanted), _LOOKUP):
                    numbers += session.scalars(select(EstateDevice.number)
                                               .where(EstateDevice.device_id.in_(wanted[start:start + _LOOKUP])))
                if not numbers:
                    raise EstateError(NO_DEVICES, f"none of the {len(wanted)} devices is in the estate; `smki estate "
                                      "status` counts the devices there are", field="device")
                numbers.sort()
                count = len(numbers)
                chunks = [{"first_number": part[0], "last_number": part[-1], "numbers": json.dumps(part)}
                          for part in (numbers[i:i + chunk_size] for i in range(0, len(numbers), chunk_size))]
            else:
                low, high, count = session.execute(select(func.min(EstateDevice.number), func.max(EstateDevice.number),
                                                          func.count())).one()
                if not count:
                    raise EstateError(NO_DEVICES, "the estate has no devices; `smki estate create` builds them")
                chunks = [{"first_number": first, "last_number": min(high, first + chunk_size - 1), "numbers": None}
                          for first in range(low, high + 1, chunk_size)]
            run = EstateSendRun(mode=order.mode_name, roles=json.dumps(list(order.roles)),
                                placements=order.placements_json(), counter=order.counter, at=order.at, holder=holder,
                                share_k=share[0] if share else None, share_n=share[1] if share else None,
                                device_count=count, chunk_count=len(chunks), status=RUNNING,
                                requested_by=requested_by[:128], created_at=now_utc())
            session.add(run)
            session.flush()
            run_id = run.id
            session.execute(insert(EstateSendChunk), [
                {**chunk, "run_id": run_id, "chunk": n, "state": QUEUED, "attempts": 0, "devices": 0}
                for n, chunk in enumerate(chunks)])
        self._runs[run_id] = _Run(order, holder, share)
        if holder == WORKERS and self.scheduler is not None:
            self.scheduler.schedule_send_chunks(run_id, list(range(len(chunks))))
        return run_id

    def _run(self, run_id: int) -> _Run:
        known = self._runs.get(run_id)
        if known is None:
            with self.database.session() as session:
                row = session.get(EstateSendRun, run_id)
                if row is None:
                    raise EstateError(UNKNOWN_RUN, f"there is no send run {run_id}; `smki estate send --runs` lists "
                                      "them")
                order = Order(row.mode, tuple(json.loads(row.roles)), Order.placements_from_json(row.placements),
                              int(row.counter), utc(row.at))
                share = (row.share_k, row.share_n) if row.share_n is not None and row.share_k is not None else None
                known = self._runs[run_id] = _Run(order, row.holder, share)
        return known

    def order(self, run_id: int) -> Order:
        return self._run(run_id).order

    # --- sending one chunk -------------------------------------------------------------------------------

    def run_chunk(self, run_id: int, chunk: int, keys: Keys | None = None) -> int:
        """Claim, send and commit one chunk; how many devices it sent to (0: nothing to do). ``keys``: the
        secrets of a ``process`` run (a worker passes none, and sends only ``workers`` runs)."""
        run = self._run(run_id)
        if keys is None and run.holder != WORKERS:
            return 0   # a ceremony's run: only the process holding the ceremony sends it
        with self.database.session() as session:
            token = self.chunks.claim(session, run_id, chunk, self.lease)
            if token is None:
                return 0
            row = session.execute(select(EstateSendChunk.first_number, EstateSendChunk.last_number,
                                         EstateSendChunk.numbers, EstateSendChunk.attempts)
                                  .where(EstateSendChunk.run_id == run_id, EstateSendChunk.chunk == chunk)).one()
        try:
            sent = self._send(run, run_id, chunk, token, keys or self.sender.keys(run.order), row)
        except SmkiError as refusal:
            # No key, a placement the Repository cannot give: a retry cannot help until a person acts.
            self._fail(run_id, chunk, token, refusal.code, refusal.message)
            return 0
        except Exception:
            # A database failure mid-chunk: nothing of it committed. Hand it back; the attempts bound the retries.
            log.exception("send run %s chunk %s failed; retrying", run_id, chunk)
            self._release(run_id, chunk, token, row.attempts, run.holder)
            return 0
        if sent is not None:
            self.complete_if_done(run_id)
        return sent or 0

    def _send(self, run: _Run, run_id: int, chunk: int, token: str, keys: Keys, row: Any) -> int | None:
        order, sender = run.order, self.sender
        devices = self._devices(row, run.share)
        device_keys = sender.certificate_keys(s for d in devices for s in keys_of_device(d, order))
        report = SendReport()
        outcomes: list[dict[str, Any]] = []
        encoded: dict[tuple[tuple[str, int], ...], str] = {}   # most devices answer alike: encoded once

        def record(device: Device, checked: Checked) -> None:
            sender.tally(report, device.device_id, checked, False)
            outcome = checked.outcome
            key = tuple(outcome.codes.items())
            codes = encoded.get(key)
            if codes is None:
                codes = encoded[key] = json.dumps(outcome.codes, separators=(",", ":"))
            outcomes.append({"run_id": run_id, "device_id": device.device_id, "status": outcome.status,
                             "code": outcome.code, "codes": codes})

        commands: dict[str, bytes] = {}
        for device in devices:
            try:
                ka = device_keys.get(device.ka_serial or "")
                commands[device.device_id] = sender.command(order, keys, device, ka)
            except EstateError as error:
                record(device, Checked(DeviceOutcome(NOT_SENT, code=error.code), error.message))
        by_id = {d.device_id: d for d in devices}
        with self.database.session() as session:
            finished = rows_affected(session.execute(
                update(EstateSendChunk)
                .where(EstateSendChunk.run_id == run_id, EstateSendChunk.chunk == chunk,
                       EstateSendChunk.lease_token == token, EstateSendChunk.state == CLAIMED)
                .values(state=DONE, lease_token=None, lease_until=None, done_at=now_utc(), error_code=None,
                        error_text=None)))
            if not finished:
                session.rollback()   # our lease ran out and another sender took the chunk
                log.warning("send run %s chunk %s: lease lost; discarding this attempt", run_id, chunk)
                return None
            for item in deliver_within(session, commands, order.at or now_utc()) if commands else []:
                device = by_id[item.device_id]
                record(device, sender.outcome(order, device, item, device_keys.get(device.ds_serial or "")))
            insert_rows(session.connection(), _OUTCOMES, _OUTCOME_COLUMNS, outcomes)
            session.execute(update(EstateSendChunk)
                            .where(EstateSendChunk.run_id == run_id, EstateSendChunk.chunk == chunk)
                            .values(devices=report.devices, summary=report.summary_json()))
        return report.devices

    def _devices(self, row: Any, share: tuple[int, int] | None) -> list[Device]:
        with self.database.session() as session:
            statement = select(EstateDevice.device_id, EstateDevice.ds_serial, EstateDevice.ka_serial,
                               EstateDevice.cells) \
                .where(EstateDevice.number >= row.first_number, EstateDevice.number <= row.last_number) \
                .order_by(EstateDevice.number)
            if row.numbers is not None:
                statement = statement.where(EstateDevice.number.in_(json.loads(row.numbers)))
            if share is not None:
                statement = statement.where(EstateDevice.number % share[1] == share[0])
            rows = session.execute(statement).all()
            cells = {r.device_id: json.loads(r.cells) for r in rows}
            ids = {c[3] for device_cells in cells.values() for c in device_cells if c[3] is not None}
            anchors = {a.id: (a.serial, a.subject_eui, a.der) for a in session.execute(
                select(EstateAnchor.id, EstateAnchor.serial, EstateAnchor.subject_eui, EstateAnchor.der)
                .where(EstateAnchor.id.in_(ids)))} if ids else {}
        return [Device(r.device_id, r.ds_serial, r.ka_serial, cells[r.device_id], anchors) for r in rows]

    def _fail(self, run_id: int, chunk: int, token: str, code: str, text: str) -> None:
        self.chunks.fail(run_id, chunk, token, code, text)

    def _release(self, run_id: int, chunk: int, token: str, attempts: int, holder: str) -> None:
        scheduler = self.scheduler
        reschedule = (lambda: scheduler.schedule_send_chunks(run_id, [chunk], eta=now_utc() + RETRY_DELAY)) \
            if holder == WORKERS and scheduler is not None else None
        self.chunks.release(run_id, chunk, token, attempts, reschedule=reschedule)

    def complete_if_done(self, run_id: int) -> bool:
        return self.chunks.complete_if_done(run_id)

    # --- sending a run in this process -----------------------------------------------------------------

    def run_here(self, run_id: int, keys: Keys | None = None, *,
                 progress: Callable[[int], None] | None = None) -> SendProgress:
        """Send every chunk of the run not yet done, in this process (a ``process`` run's keys in ``keys``)."""
        run = self._run(run_id)
        if keys is None:
            keys = self.sender.keys(run.order)
        while True:
            chunk = self._next_chunk(run_id)
            if chunk is None:
                break
            sent = self.run_chunk(run_id, chunk, keys)
            if progress is not None and sent:
                progress(sent)
        self.complete_if_done(run_id)
        return self.progress(run_id)

    def _next_chunk(self, run_id: int) -> int | None:
        now = now_utc()
        with self.database.session() as session:
            return session.scalar(select(EstateSendChunk.chunk).where(
                EstateSendChunk.run_id == run_id,
                or_(EstateSendChunk.state == QUEUED,
                    and_(EstateSendChunk.state == CLAIMED, EstateSendChunk.lease_until < now)))
                .order_by(EstateSendChunk.chunk).limit(1))

    # --- resuming ----------------------------------------------------------------------------------------

    def resume(self, run_id: int) -> _Run:
        """Make every chunk of the run not done sendable again: failed ones, and those claimed by a sender that
        was interrupted (safe even if that sender still runs: its commit is conditional on its lease token, so
        at most one delivery of a chunk commits). For a ``workers`` run, schedules them."""
        run = self._run(run_id)
        with self.database.session() as session:
            session.execute(update(EstateSendChunk)
                            .where(EstateSendChunk.run_id == run_id, EstateSendChunk.state.in_((FAILED, CLAIMED)))
                            .values(state=QUEUED, attempts=0, lease_token=None, lease_until=None, error_code=None,
                                    error_text=None))
        if run.holder == WORKERS:
            self.recover(run_id)
        self.complete_if_done(run_id)
        return run

    def recover(self, run_id: int | None = None, *, stale_only: bool = False) -> int:
        """Schedule the chunks of running ``workers`` runs that are queued, or claimed under a lease that ran out
        (``stale_only``: only those, the periodic sweep). Duplicates find nothing to claim."""
        if self.scheduler is None:
            return 0
        by_run = self.chunks.due(run_id, stale_only=stale_only, runs=EstateSendRun.holder == WORKERS)
        for run, chunks in by_run.items():
            self.scheduler.schedule_send_chunks(run, chunks)
        return sum(len(chunks) for chunks in by_run.values())

    # --- reading ---------------------------------------------------------------------------------------

    def progress(self, run_id: int) -> SendProgress:
        with self.database.session() as session:
            run = session.get(EstateSendRun, run_id)
            if run is None:
                raise EstateError(UNKNOWN_RUN, f"there is no send run {run_id}; `smki estate send --runs` lists them")
            counts = self.chunks.counts(session, run_id)
            expected = run.device_count if run.share_n is None else -(-run.device_count // run.share_n)
            return SendProgress(run_id, run.status, run.mode, run.holder, expected, counts.devices_done,
                                run.chunk_count, counts.by_state.get(DONE, 0), counts.by_state.get(FAILED, 0),
                                counts.failures)

    def runs(self, limit: int = 20) -> list[SendProgress]:
        with self.database.session() as session:
            ids = list(session.scalars(select(EstateSendRun.id).order_by(EstateSendRun.id.desc()).limit(limit)))
        return [self.progress(run_id) for run_id in ids]

    def report(self, run_id: int, *, collect_outcomes: bool = False) -> SendReport:
        """The run's report: the chunks' counts merged; with ``collect_outcomes`` every device's outcome (mind the
        memory on a large estate: :meth:`outcomes` streams them)."""
        self._run(run_id)
        report = SendReport(run_id=run_id)
        with self.database.session() as session:
            for summary in session.scalars(select(EstateSendChunk.summary).where(
                    EstateSendChunk.run_id == run_id, EstateSendChunk.state == DONE)
                    .order_by(EstateSendChunk.chunk)):
                if summary:
                    report.merge(SendReport.from_summary(summary))
        if collect_outcomes:
            report.outcomes = dict(self.outcomes(run_id))
        return report

    def outcomes(self, run_id: int, statuses: Sequence[str] | None = None,
                 page: int = 5000) -> Iterator[tuple[str, DeviceOutcome]]:
        """Every device's outcome in the run (only those of ``statuses`` when given), by Device ID, a page of
        rows at a time."""
        last = ""
        while True:
            with self.database.session() as session:
                statement = select(EstateSendOutcome.device_id, EstateSendOutcome.status, EstateSendOutcome.code,
                                   EstateSendOutcome.codes) \
                    .where(EstateSendOutcome.run_id == run_id, EstateSendOutcome.device_id > last) \
                    .order_by(EstateSendOutcome.device_id).limit(page)
                if statuses is not None:
                    statement = statement.where(EstateSendOutcome.status.in_(list(statuses)))
                rows = session.execute(statement).all()
            if not rows:
                return
            for row in rows:
                yield row.device_id, DeviceOutcome(row.status, json.loads(row.codes), row.code)
            last = rows[-1].device_id

    def curve(self, run_id: int) -> list[tuple[dt.datetime, int]]:
        """Devices recovered over time: after each chunk committed, the run's running total."""
        out: list[tuple[dt.datetime, int]] = []
        total = 0
        with self.database.session() as session:
            for done_at, summary in session.execute(
                    select(EstateSendChunk.done_at, EstateSendChunk.summary)
                    .where(EstateSendChunk.run_id == run_id, EstateSendChunk.state == DONE)
                    .order_by(EstateSendChunk.done_at)):
                total += int(json.loads(summary or "{}").get("by_status", {}).get("recovered", 0))
                moment = utc(done_at)
                assert moment is not None
                out.append((moment, total))
        return out
