"""Estate runs: creation, the building of each chunk of devices, recovery of an interrupted run.

A run is cut into chunks of consecutive devices. A worker claims a chunk with a conditional UPDATE that takes
a lease, makes the chunk's key pairs, has the CA sign their Device Certificates through the one issuance path
(:class:`smki.issuance.IssuanceService`), and commits in ONE transaction: the chunk's ``done`` mark
(conditional on its lease token, first, so a worker whose lease was taken over commits nothing), the
issuance ledger rows, the certificates' Repository records (lodged through the RA), the devices, their cells
and counters. A worker killed at any moment leaves the chunk whole or absent; recovery schedules every
chunk not done again, and a duplicate job finds nothing to claim.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol, cast

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from repository.certificates import serial_text
from smki.ca.builder import CertificateRequest
from smki.core.db import rows_affected
from smki.core.errors import SmkiError
from smki.core.eui64 import Eui64
from smki.core.times import now_utc
from smki.estate.chunks import CLAIMED, DONE, FAILED, QUEUED, RUNNING, LeasedChunks
from smki.estate.faults import FaultDraw
from smki.estate.models import EstateChunk, EstateDevice, EstateRun
from smki.estate.plan import EstateError, Planner, parse_mix, plan_json, store_anchors
from smki.instance import Instance
from smki.issuance import IssuanceService, IssuedCertificate, NotIssued
from smki.ra.lodging import issued_lodging

log = logging.getLogger("smki.estate")

RETRY_DELAY = dt.timedelta(seconds=2)
CHANNEL = "estate"
UNKNOWN_RUN = "ES:RUN1"
CHUNK_FAILED = "ES:CHK1"
USAGE_COLUMN = {"digitalSignature": "ds", "keyAgreement": "ka"}
DEVICES = cast(Table, EstateDevice.__table__)   # Core inserts: a chunk's devices in one executemany
# A device's anchor state is its worst cell's, in this order.
STATE_RANK = {"tampered": 0, "stale": 1, "empty": 2, "replaced": 3, "installed": 4}


def worst_state(states: Iterable[str]) -> str:
    return min(states, key=STATE_RANK.__getitem__, default="installed")


class Scheduler(Protocol):
    def schedule_chunks(self, run_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None: ...


@dataclass(frozen=True)
class RunProgress:
    run_id: int
    status: str
    device_count: int
    devices_done: int
    chunk_count: int
    chunks_done: int
    chunks_failed: int
    failures: list[tuple[int, str, str]] = field(default_factory=list)   # (chunk, code, text)


@dataclass(frozen=True)
class RunPlan:
    """A run's stored plan, decoded once per process."""

    first_number: int
    pattern: list[str]
    types: dict[str, Any]
    initial_counters: dict[str, str]   # per type, a new device's counters as stored

    def device_type(self, number: int) -> str:
        return self.pattern[(number - self.first_number) % len(self.pattern)]

    def counters(self, device_type: str) -> str:
        return self.initial_counters[device_type]


@cache
def _decoded(run_id: int, database_url: str, first_number: int, plan: str) -> RunPlan:
    data = json.loads(plan)
    # A new device's anti-replay counters: 0 for every role it holds a cell of, the root's aside.
    counters = {name: json.dumps({str(role): 0 for role in spec["counters"]}, separators=(",", ":"))
                for name, spec in data["types"].items()}
    return RunPlan(first_number, data["pattern"], data["types"], counters)


class EstateService:
    def __init__(self, instance: Instance, scheduler: Scheduler) -> None:
        self.instance = instance
        self.database = instance.database
        self.scheduler = scheduler
        self.policy = instance.policies.estate
        self.issuance = IssuanceService(instance.ca, instance.database, instance.policies)
        self.lodging = issued_lodging(instance.database, "estate")
        self.faults = FaultDraw(self.policy.faults)
        self.first_device_id = int.from_bytes(self.policy.first_device_id.value, "big")
        self.lease = dt.timedelta(seconds=self.policy.lease_seconds)
        self.chunks = LeasedChunks(self.database, EstateRun, EstateChunk, devices=EstateChunk.device_count,
                                   what="building", failed_code=CHUNK_FAILED)

    # --- creating a run ------------------------------------------------------------------------------

    def create_run(self, device_count: int, *, types: str | None = None, requested_by: str = "smki estate",
                   chunk_size: int | None = None) -> int:
        """Plan and store a run of ``device_count`` devices and schedule its chunks; returns the run's id.
        Nothing is stored when the plan is refused (no certificate for a cell, no Party to own a type)."""
        if device_count <= 0:
            raise EstateError("ES:NUM1", f"the number of devices must be at least 1, not {device_count}",
                              field="devices")
        mix = parse_mix(types, self.policy)
        plans = Planner(self.instance).plan(mix)
        size = chunk_size or self.policy.chunk_size
        chunk_count = -(-device_count // size)
        for _attempt in range(5):
            try:
                with self.database.session() as session:
                    ids = store_anchors(session, plans)
                    # Device numbers follow on from every earlier run's; two runs created at once collide on
                    # the unique first_number, and the later one takes the next range.
                    first = int(session.scalar(select(func.coalesce(
                        func.max(EstateRun.first_number + EstateRun.device_count), 0))) or 0)
                    last_id = self.first_device_id + first + device_count - 1
                    if last_id >= 1 << 64:
                        raise EstateError("ES:NUM2", f"{device_count} more devices would run past the last "
                                          "EUI-64 after policies/estate.yaml first_device_id")
                    run = EstateRun(device_count=device_count, first_number=first, chunk_size=size,
                                    chunk_count=chunk_count, plan=plan_json(mix, plans, ids), status=RUNNING,
                                    requested_by=requested_by[:128], created_at=now_utc())
                    session.add(run)
                    session.flush()
                    run_id = run.id
                    session.execute(insert(EstateChunk), [
                        {"run_id": run_id, "chunk": n, "first_number": first + n * size,
                         "device_count": min(size, device_count - n * size), "state": QUEUED, "attempts": 0}
                        for n in range(chunk_count)])
                break
            except IntegrityError:
                continue
        else:
            raise EstateError("ES:RUN2", "could not allocate device numbers for the run (other runs were being "
                              "created at the same moment); try again.")
        self.scheduler.schedule_chunks(run_id, list(range(chunk_count)))
        return run_id

    # --- building one chunk (a job) -----------------------------------------------------------------

    def build_chunk(self, run_id: int, chunk: int) -> int:
        """Claim, build and commit one chunk. Returns how many devices it built (0: nothing to do)."""
        with self.database.session() as session:
            token = self.chunks.claim(session, run_id, chunk, self.lease)
            if token is None:
                return 0
            row = session.execute(select(EstateChunk.first_number, EstateChunk.device_count, EstateChunk.attempts,
                                         EstateRun.first_number.label("run_first"), EstateRun.plan)
                                  .join(EstateRun, EstateRun.id == EstateChunk.run_id)
                                  .where(EstateChunk.run_id == run_id, EstateChunk.chunk == chunk)).one()
        plan = _decoded(run_id, self.database.url, row.run_first, row.plan)
        try:
            built = self._build(run_id, chunk, token, plan, row.first_number, row.device_count)
        except SmkiError as refusal:
            # The issuance path refused (the issuing CA is revoked or expired, a device at its limit): a retry
            # cannot help until a person acts; the chunk stays failed, and a resumed run tries it again.
            self._fail(run_id, chunk, token, refusal.code, refusal.message)
            return 0
        except IntegrityError:
            log.warning("estate run %s chunk %s: integrity conflict; retrying", run_id, chunk)
            self._release(run_id, chunk, token, row.attempts)
            return 0
        except Exception:
            # A database or CA failure mid-chunk: nothing of it committed. Hand it back and retry shortly;
            # the attempt count bounds the retries of a chunk that always fails.
            log.exception("estate run %s chunk %s failed; retrying", run_id, chunk)
            self._release(run_id, chunk, token, row.attempts)
            return 0
        if built:
            self.complete_if_done(run_id)
        return built

    def _build(self, run_id: int, chunk: int, token: str, plan: RunPlan, first: int, count: int) -> int:
        devices: list[dict[str, Any]] = []
        requests: list[CertificateRequest] = []
        wanted: list[tuple[int, str]] = []   # (index in devices, usage) of each request
        installed = now_utc()
        generate, curve = ec.generate_private_key, ec.SECP256R1()
        for number in range(first, first + count):
            name = plan.device_type(number)
            spec = plan.types[name]
            device_id = (self.first_device_id + number).to_bytes(8, "big")
            eui = Eui64(device_id)
            faults = self.faults(device_id)
            device: dict[str, Any] = {
                "number": number, "device_id": device_id.hex().upper(), "device_type": name, "run_id": run_id,
                "supplier_party_id": None, "network_operator_party_id": None, "ds_private_key": None,
                "ka_private_key": None, "ds_serial": None, "ka_serial": None, "faults": faults,
                "counters": plan.counters(name), "installed_at": installed}
            for usage in spec["certificates"]:
                key = generate(curve)
                device[f"{USAGE_COLUMN[usage]}_private_key"] = key.private_numbers().private_value.to_bytes(32, "big")
                requests.append(CertificateRequest("device", key.public_key(), key_usage=usage, device_id=eui))
                wanted.append((len(devices), usage))
            anchors = spec["common"]
            for role, owners in spec["owners"].items():
                party, owned = owners[number % len(owners)]
                device["supplier_party_id" if role == "supplier" else "network_operator_party_id"] = party
                anchors = [mine if mine is not None else common for common, mine in zip(anchors, owned, strict=True)]
            faulty_state = self.faults.cell_state(faults)
            cells = [[role, usage, cell_usage, anchor,
                      "empty" if anchor is None else ("installed" if role == 0 else faulty_state)]
                     for (role, usage, cell_usage, _source), anchor in zip(spec["cells"], anchors, strict=True)]
            device["cells"] = json.dumps(cells, separators=(",", ":"))
            device["anchor_state"] = worst_state(cell[4] for cell in cells)
            devices.append(device)
        signed = self.issuance.sign(requests, channel=CHANNEL, requested_by=f"estate run {run_id}")
        _raise_refusal(signed.outcomes)
        with self.database.session() as session:
            finished = rows_affected(session.execute(
                update(EstateChunk)
                .where(EstateChunk.run_id == run_id, EstateChunk.chunk == chunk, EstateChunk.lease_token == token,
                       EstateChunk.state == CLAIMED)
                .values(state=DONE, lease_token=None, lease_until=None, done_at=now_utc(), error_code=None,
                        error_text=None)))
            if not finished:
                session.rollback()   # our lease ran out and another worker took the chunk
                log.warning("estate run %s chunk %s: lease lost; discarding this attempt", run_id, chunk)
                return 0
            outcomes = self.issuance.record(session, signed)
            _raise_refusal(outcomes)   # rolls the chunk back whole
            issued = [o for o in outcomes if isinstance(o, IssuedCertificate)]
            for (index, usage), certificate in zip(wanted, issued, strict=True):
                devices[index][f"{USAGE_COLUMN[usage]}_serial"] = serial_text(certificate.certificate.serial_number)
            self.lodging.within(session, [(certificate, False) for certificate in issued])
            session.execute(insert(DEVICES), devices)
        return count

    def _fail(self, run_id: int, chunk: int, token: str, code: str, text: str) -> None:
        self.chunks.fail(run_id, chunk, token, code, text)

    def _release(self, run_id: int, chunk: int, token: str, attempts: int) -> None:
        self.chunks.release(run_id, chunk, token, attempts, reschedule=lambda: self.scheduler.schedule_chunks(
            run_id, [chunk], eta=now_utc() + RETRY_DELAY))

    def complete_if_done(self, run_id: int) -> bool:
        return self.chunks.complete_if_done(run_id)

    # --- resuming --------------------------------------------------------------------------------------

    def resume(self, run_id: int | None = None) -> int:
        """Schedule again every chunk not done of ``run_id`` (default: the newest unfinished run), failed
        ones included; returns the run's id."""
        with self.database.session() as session:
            if run_id is None:
                run_id = session.scalar(select(EstateRun.id).where(EstateRun.status == RUNNING)
                                        .order_by(EstateRun.id.desc()).limit(1))
                if run_id is None:
                    raise EstateError(UNKNOWN_RUN, "no estate run is unfinished; nothing to resume")
            elif session.get(EstateRun, run_id) is None:
                raise EstateError(UNKNOWN_RUN, f"there is no estate run {run_id}; `smki estate status` lists them")
            self.chunks.requeue_failed(session, run_id)
        self.recover(run_id)
        self.complete_if_done(run_id)
        return run_id

    def recover(self, run_id: int | None = None, *, stale_only: bool = False) -> int:
        """Schedule every chunk of running runs that is queued, or claimed under a lease that ran out (with
        ``stale_only``, the periodic sweep: only those whose lease ran out). Duplicates find nothing to claim."""
        by_run = self.chunks.due(run_id, stale_only=stale_only)
        for run, chunks in by_run.items():
            self.scheduler.schedule_chunks(run, chunks)
        return sum(len(chunks) for chunks in by_run.values())

    # --- reading ---------------------------------------------------------------------------------------

    def progress(self, run_id: int) -> RunProgress:
        with self.database.session() as session:
            run = session.get(EstateRun, run_id)
            if run is None:
                raise EstateError(UNKNOWN_RUN, f"there is no estate run {run_id}; `smki estate status` lists them")
            counts = self.chunks.counts(session, run_id)
            return RunProgress(run_id, run.status, run.device_count, counts.devices_done, run.chunk_count,
                               counts.by_state.get(DONE, 0), counts.by_state.get(FAILED, 0), counts.failures)


def _raise_refusal(outcomes: Iterable[IssuedCertificate | NotIssued]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, NotIssued):
            raise outcome.error
