"""Batches of Device CSRs: submission, background parsing, chunked processing, results, retention.

Exactly once, with the database as the arbiter (the job queue only delivers at least once, or at
most once when a worker dies holding a job):
- a step is *claimed* by a conditional UPDATE that takes a lease with a fresh token; only the token's
  holder may finish it, and a lease whose worker vanished expires and the step is claimed again;
- a chunk's outcomes, its ledger rows and its ``done`` mark commit in one transaction, the ``done``
  UPDATE (conditional on the token) first, so a stale worker's commit changes nothing;
- each CSR's outcome is keyed by (batch, position): a second outcome cannot be written.
Jobs are therefore safe to run twice, and recovery simply schedules every unfinished step again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from sqlalchemy import Connection, Table, and_, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from smki.core.db import rows_affected
from smki.core.driver_sql import insert_rows
from smki.core.times import now_utc, utc
from smki.devicecsr import documents, pipeline
from smki.devicecsr.gate import DeviceCsrGate, Subscriber
from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrChunk, DeviceCsrOutcome
from smki.devicecsr.policy import DeviceCsrPolicy
from smki.devicecsr.xml import CsrResult, XmlRejected
from smki.instance import Instance
from smki.issuance import IssuanceService, IssuedCertificate
from smki.models import CsrRejection, DeviceCertificateTally, IssuanceRecord

log = logging.getLogger("smki.devicecsr")

PENDING, REJECTED, PARSING, QUEUED = "PENDING", "REJECTED", "PARSING", "QUEUED"
PROCESSING, PAUSED, COMPLETED, TAMPERED = "PROCESSING", "PAUSED", "COMPLETED", "TAMPERED"
FORMAT_ERROR, WORKFLOW_ERROR = "FORMAT_ERROR", "WORKFLOW_ERROR"
ACTIVE = (PENDING, PARSING, QUEUED, PROCESSING, PAUSED)
FINAL = (REJECTED, COMPLETED, TAMPERED, FORMAT_ERROR, WORKFLOW_ERROR)
RETRY_DELAY = dt.timedelta(seconds=5)
MAX_ATTEMPTS = 5   # a chunk that kills its worker this often is answered CA_ERROR rather than retried forever

# Called after a chunk commits, with each certificate and its ManufacturingFlag (to lodge them). A hook
# that also has ``within(connection, issued)`` (:class:`LodgesWithin`) is called inside the chunk's
# transaction instead, so the certificates and their Repository records commit together.
OnIssued = Callable[[list[tuple[IssuedCertificate, bool]]], None]


@runtime_checkable
class LodgesWithin(Protocol):
    def within(self, connection: Connection | Session, issued: list[tuple[IssuedCertificate, bool]]) -> None: ...


def lodging_within(on_issued: OnIssued | None) -> LodgesWithin | None:
    """The hook, when it lodges inside the caller's transaction."""
    return on_issued if isinstance(on_issued, LodgesWithin) else None


class Scheduler(Protocol):
    """Where follow-up steps go: the job queue (``smki.devicecsr.jobs``)."""

    def schedule_parse(self, batch_id: int, eta: dt.datetime | None = None) -> None: ...

    def schedule_chunks(self, batch_id: int, chunks: Sequence[int], eta: dt.datetime | None = None) -> None: ...


@dataclass
class BatchView:
    id: int
    party_id: str
    channel: str
    reference: str
    status: str
    csr_count: int
    error_code: str | None
    error_text: str | None
    submitted_at: dt.datetime


# The columns of :meth:`BatchService._outcome_row`, in one order for the chunk's bulk insert.
OUTCOME_COLUMNS = ("batch_id", "seq", "csr_ref", "status", "error_code", "error_text", "serial", "device_id",
                   "manufacturing_flag", "decided_at")


class BatchService:
    def __init__(self, instance: Instance, gate: DeviceCsrGate, policy: DeviceCsrPolicy, scheduler: Scheduler,
                 on_issued: OnIssued | None = None) -> None:
        self.instance = instance
        self.database = instance.database
        self.gate = gate
        self.policy = policy
        self.scheduler = scheduler
        self.on_issued = on_issued
        # The one issuance path, enforcing this service's threshold in the ledger's per-device tally.
        self.issuance = IssuanceService(instance.ca, instance.database, instance.policies,
                                        device_limit=policy.certificate_threshold)

    # --- submission (synchronous, in the web request) --------------------------------------------

    def submit(self, subscriber: Subscriber, payload: bytes, *, channel: str, reference: str,
               csr_count: int) -> int:
        """Store the upload exactly as received with its digest, and schedule its parsing."""
        with self.database.session() as session:
            batch = DeviceCsrBatch(party_id=subscriber.party_id, subscriber=subscriber.to_json(), channel=channel,
                                   reference=reference[:256], status=PENDING, payload=payload,
                                   payload_sha256=hashlib.sha256(payload).hexdigest(), csr_count=csr_count,
                                   chunk_count=0, submitted_at=now_utc())
            session.add(batch)
            session.flush()
            batch_id = batch.id
        self.scheduler.schedule_parse(batch_id)
        return batch_id

    # --- parsing (background) ----------------------------------------------------------------------

    def parse(self, batch_id: int) -> None:
        now = now_utc()
        token = uuid.uuid4().hex
        with self.database.session() as session:
            claimed = rows_affected(session.execute(
                update(DeviceCsrBatch)
                .where(DeviceCsrBatch.id == batch_id,
                       or_(DeviceCsrBatch.status.in_((PENDING, PAUSED)),
                           and_(DeviceCsrBatch.status == PARSING, DeviceCsrBatch.lease_until < now)),
                       DeviceCsrBatch.chunk_count == 0)
                .values(status=PARSING, lease_token=token, lease_until=now + self.policy.lease)))
        if not claimed:
            return  # parsed already, or someone else holds it
        if not self.policy.window_open(now):
            self._pause(batch_id, token, now)
            return
        try:
            self._parse_claimed(batch_id, token, now)
        except Exception:
            log.exception("batch %s: parsing failed; retrying", batch_id)
            with self.database.session() as session:
                session.execute(update(DeviceCsrBatch)
                                .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.lease_token == token,
                                       DeviceCsrBatch.status == PARSING)
                                .values(status=PENDING, lease_token=None, lease_until=None))
            self.scheduler.schedule_parse(batch_id, eta=now_utc() + RETRY_DELAY)

    def _parse_claimed(self, batch_id: int, token: str, now: dt.datetime) -> None:
        with self.database.session() as session:
            batch = session.get(DeviceCsrBatch, batch_id)
            assert batch is not None
            payload = batch.payload
            digest, channel, reference = batch.payload_sha256, batch.channel, batch.reference
        if hashlib.sha256(payload).hexdigest() != digest:
            self._finish_parse(batch_id, token, TAMPERED, "WF:TAMP1", "the stored batch no longer matches the "
                               "digest taken when it was uploaded; it was not processed. Submit it again.")
            return
        try:
            max_csr = self.instance.policies.csr.max_size_bytes
            submission = (documents.check_zip(payload, reference, self.policy, max_csr) if channel == "portal"
                          else documents.read_batch_xml(payload))
        except XmlRejected as rejected:
            self._finish_parse(batch_id, token, FORMAT_ERROR, rejected.code, rejected.text)
            return
        capacity = self._capacity_refusal(batch_id, len(submission.entries), now)
        if capacity:
            self._finish_parse(batch_id, token, REJECTED, "WF:CAP1", capacity)
            return
        chunks = self._chunk_rows(batch_id, submission.entries)
        with self.database.session() as session:
            done = rows_affected(session.execute(
                update(DeviceCsrBatch).where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.lease_token == token,
                                             DeviceCsrBatch.status == PARSING)
                .values(status=QUEUED, chunk_count=len(chunks), parsed_at=now_utc(), lease_token=None,
                        lease_until=None)))
            if not done:
                session.rollback()
                return
            session.execute(insert(DeviceCsrChunk), chunks)
        self.scheduler.schedule_chunks(batch_id, [c["chunk"] for c in chunks])

    def _chunk_rows(self, batch_id: int, entries: Sequence[documents.Entry]) -> list[dict]:
        first_seen: dict[str, int] = {}
        packed = []
        for seq, entry in enumerate(entries):
            key = entry.csr.strip()
            duplicate_of = first_seen.setdefault(key, seq)
            packed.append([entry.ref, entry.csr, duplicate_of if duplicate_of != seq else None])
        size = self.policy.chunk_size
        return [{"batch_id": batch_id, "chunk": n, "first_seq": start, "state": "queued", "attempts": 0,
                 "entries": json.dumps(packed[start:start + size], separators=(",", ":")).encode()}
                for n, start in enumerate(range(0, len(packed), size))]

    def _capacity_refusal(self, batch_id: int, count: int, now: dt.datetime) -> str | None:
        """The nightly capacity across all subscribers is a soft limit; refused only when enforcing."""
        if not self.policy.enforce:
            return None
        limit = self.policy.limits.nightly_capacity_all_parties
        since = now - dt.timedelta(hours=24)
        with self.database.session() as session:
            queued = int(session.scalar(select(func.coalesce(func.sum(DeviceCsrBatch.csr_count), 0))
                                        .where(DeviceCsrBatch.id != batch_id, DeviceCsrBatch.parsed_at >= since,
                                               DeviceCsrBatch.status.in_((QUEUED, PROCESSING, PAUSED, COMPLETED))))
                         or 0)
        if queued + count > limit:
            return (f"the batch would take the night's batched CSRs to {queued + count}, past the capacity of "
                    f"{limit} across all subscribers; submit it again tomorrow.")
        return None

    def _finish_parse(self, batch_id: int, token: str, status: str, code: str, text: str) -> None:
        with self.database.session() as session:
            session.execute(update(DeviceCsrBatch)
                            .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.lease_token == token)
                            .values(status=status, error_code=code, error_text=text, completed_at=now_utc(),
                                    lease_token=None, lease_until=None))

    def _pause(self, batch_id: int, token: str, now: dt.datetime) -> None:
        with self.database.session() as session:
            session.execute(update(DeviceCsrBatch)
                            .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.lease_token == token)
                            .values(status=PAUSED, lease_token=None, lease_until=None))
        self.scheduler.schedule_parse(batch_id, eta=self.policy.next_opening(now))

    # --- processing one chunk (background) ---------------------------------------------------------

    def process_chunk(self, batch_id: int, chunk: int) -> int:
        """Claim, decide, sign and commit one chunk. Returns how many CSRs it settled (0: nothing to do)."""
        now = now_utc()
        if not self.policy.window_open(now):
            with self.database.session() as session:
                session.execute(update(DeviceCsrBatch)
                                .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.status.in_((QUEUED, PROCESSING)))
                                .values(status=PAUSED))
            self.scheduler.schedule_chunks(batch_id, [chunk], eta=self.policy.next_opening(now))
            return 0
        token = uuid.uuid4().hex
        with self.database.session() as session:
            claimed = rows_affected(session.execute(
                update(DeviceCsrChunk)
                .where(DeviceCsrChunk.batch_id == batch_id, DeviceCsrChunk.chunk == chunk,
                       or_(DeviceCsrChunk.state == "queued",
                           and_(DeviceCsrChunk.state == "claimed", DeviceCsrChunk.lease_until < now)))
                .values(state="claimed", lease_token=token, lease_until=now + self.policy.lease,
                        attempts=DeviceCsrChunk.attempts + 1)))
            if not claimed:
                return 0
            session.execute(update(DeviceCsrBatch)
                            .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.status.in_((QUEUED, PAUSED)))
                            .values(status=PROCESSING))
        try:
            return self._work(batch_id, chunk, token)
        except Exception:
            # A database or CA failure mid-chunk: nothing of it committed. Hand the chunk back and retry
            # shortly; the attempt counter bounds the retries of a chunk that always fails.
            log.exception("batch %s chunk %s failed; retrying", batch_id, chunk)
            self._release(batch_id, chunk, token)
            self.scheduler.schedule_chunks(batch_id, [chunk], eta=now_utc() + RETRY_DELAY)
            return 0

    def _work(self, batch_id: int, chunk: int, token: str) -> int:
        with self.database.session() as session:
            row = session.execute(select(DeviceCsrChunk.first_seq, DeviceCsrChunk.entries, DeviceCsrChunk.attempts,
                                         DeviceCsrBatch.subscriber, DeviceCsrBatch.channel)
                                  .join(DeviceCsrBatch, DeviceCsrBatch.id == DeviceCsrChunk.batch_id)
                                  .where(DeviceCsrChunk.batch_id == batch_id, DeviceCsrChunk.chunk == chunk)).one()
        first_seq, entries = row.first_seq, json.loads(row.entries)
        subscriber, channel = Subscriber.from_json(row.subscriber), row.channel
        if row.attempts > MAX_ATTEMPTS:
            verdicts = [pipeline.Verdict(pipeline.CA_ERROR, "CA:E510", "processing this CSR failed repeatedly; "
                                         "submit it again.") for _ in entries]
        else:
            verdicts = self._decide(subscriber, channel, first_seq, entries)
        issuing = pipeline.sign(self.issuance, verdicts, channel=channel, requested_by=subscriber.requested_by)
        within = lodging_within(self.on_issued)
        rejections = pipeline.rejection_rows(verdicts, channel=channel, requested_by=subscriber.requested_by)
        try:
            with self.database.session() as session:
                finished = rows_affected(session.execute(
                    update(DeviceCsrChunk)
                    .where(DeviceCsrChunk.batch_id == batch_id, DeviceCsrChunk.chunk == chunk,
                           DeviceCsrChunk.lease_token == token, DeviceCsrChunk.state == "claimed")
                    .values(state="done", lease_until=None, entries=b"")))
                if not finished:
                    session.rollback()  # our lease expired and another worker took the chunk
                    log.warning("batch %s chunk %s: lease lost; discarding this attempt", batch_id, chunk)
                    return 0
                # The ledger first: its per-device tally settles, under any concurrency, which certificates
                # may still be issued. Then the RA's record of every decision as it finally stands, and the
                # outcomes: all in this one transaction, so no certificate commits without its decision.
                pipeline.record(self.issuance, session, issuing)
                self.gate.record(session, subscriber, pipeline.settled(verdicts), channel=channel,
                                 reference=f"batch:{batch_id}:chunk:{chunk}")
                insert_rows(session.connection(), cast(Table, DeviceCsrOutcome.__table__), OUTCOME_COLUMNS, [
                    self._outcome_row(batch_id, first_seq + n, ref, verdict)
                    for n, ((ref, _csr, _dup), verdict) in enumerate(zip(entries, verdicts, strict=True))])
                if rejections:
                    session.execute(insert(cast(Table, CsrRejection.__table__)), rejections)
                issued = [(v.issued, v.manufacturing_flag) for v in verdicts if v.issued is not None]
                if issued and within is not None:
                    within.within(session, issued)
        except IntegrityError:
            # A serial collision (re-signed on the retry) or, if leases were misconfigured, a second outcome.
            log.warning("batch %s chunk %s: integrity conflict; the chunk will be retried", batch_id, chunk)
            self._release(batch_id, chunk, token)
            self.scheduler.schedule_chunks(batch_id, [chunk])
            return 0
        if self.complete_if_done(batch_id):
            self._analyse()
        if issued and self.on_issued is not None and within is None:
            try:
                self.on_issued(issued)
            except Exception:  # the certificates are issued and in the ledger; the hook's owner reconciles
                log.exception("batch %s chunk %s: the on_issued hook failed for %d certificates", batch_id,
                              chunk, len(issued))
        return len(entries)

    def _decide(self, subscriber: Subscriber, channel: str, first_seq: int,
                entries: list[list]) -> list[pipeline.Verdict]:
        raws = [csr if duplicate is None else None for (_ref, csr, duplicate) in entries]
        verdicts = pipeline.assess(self.instance, self.gate, subscriber, raws, channel=channel,
                                   threshold=self.policy.certificate_threshold, require_known_device=False)
        for (ref, _csr, duplicate), verdict in zip(entries, verdicts, strict=True):
            if duplicate is not None:
                verdict.code = pipeline.WF_DUPLICATE
                verdict.text = (f"this CSR is identical to CSR #{duplicate + 1} of the batch; it was issued (or "
                                f"refused) once, there. ({ref})")
        return verdicts

    @staticmethod
    def _outcome_row(batch_id: int, seq: int, ref: str, verdict: pipeline.Verdict) -> dict:
        return {"batch_id": batch_id, "seq": seq, "csr_ref": ref, "status": verdict.status,
                "error_code": verdict.code, "error_text": verdict.text,
                "serial": verdict.issued.serial if verdict.issued else None, "device_id": verdict.device_id,
                "manufacturing_flag": verdict.manufacturing_flag, "decided_at": now_utc()}

    def _release(self, batch_id: int, chunk: int, token: str) -> None:
        try:
            with self.database.session() as session:
                session.execute(update(DeviceCsrChunk)
                                .where(DeviceCsrChunk.batch_id == batch_id, DeviceCsrChunk.chunk == chunk,
                                       DeviceCsrChunk.lease_token == token, DeviceCsrChunk.state == "claimed")
                                .values(state="queued", lease_token=None, lease_until=None))
        except SQLAlchemyError:
            log.exception("could not release batch %s chunk %s; its lease will expire", batch_id, chunk)

    def complete_if_done(self, batch_id: int) -> bool:
        """Mark the batch COMPLETED once every chunk is done. Run after the chunk commits, so of two
        workers finishing the last two chunks at once, the later one sees both."""
        with self.database.session() as session:
            undone = exists().where(DeviceCsrChunk.batch_id == batch_id, DeviceCsrChunk.state != "done")
            return bool(rows_affected(session.execute(
                update(DeviceCsrBatch)
                .where(DeviceCsrBatch.id == batch_id, DeviceCsrBatch.status.in_((QUEUED, PROCESSING, PAUSED)),
                       DeviceCsrBatch.chunk_count > 0, ~undone)
                .values(status=COMPLETED, completed_at=now_utc()))))

    def _analyse(self) -> None:
        """On PostgreSQL, refresh the planner's statistics of the tables a batch has just grown (by up to
        50,000 rows each), so the next batch's queries are planned for the tables as they now are rather
        than as autovacuum last saw them: the rate holds batch after batch. Sampled, a fraction of a second."""
        if self.database.engine.dialect.name != "postgresql":
            return
        tables = ", ".join(model.__tablename__ for model in (IssuanceRecord, DeviceCertificateTally, DeviceCsrOutcome))
        try:
            with self.database.session() as session:
                session.execute(text(f"ANALYZE {tables}"))
        except SQLAlchemyError:  # statistics are an optimisation: a failure here loses nothing
            log.exception("could not analyse the Device CSR tables after a batch")

    # --- recovery and housekeeping -----------------------------------------------------------------

    def recover(self, *, stale_only: bool = False) -> int:
        """Schedule every unfinished step again (duplicates are harmless: claims arbitrate). With
        ``stale_only`` (the periodic sweep) only steps whose lease ran out, or that never started."""
        now = now_utc()
        scheduled = 0
        with self.database.session() as session:
            batches = session.execute(select(DeviceCsrBatch.id, DeviceCsrBatch.status, DeviceCsrBatch.lease_until,
                                             DeviceCsrBatch.submitted_at, DeviceCsrBatch.parsed_at)
                                      .where(DeviceCsrBatch.status.in_(ACTIVE))).all()
            chunks = session.execute(select(DeviceCsrChunk.batch_id, DeviceCsrChunk.chunk, DeviceCsrChunk.state,
                                            DeviceCsrChunk.lease_until)
                                     .join(DeviceCsrBatch, DeviceCsrBatch.id == DeviceCsrChunk.batch_id)
                                     .where(DeviceCsrBatch.status.in_(ACTIVE), DeviceCsrChunk.state != "done")).all()
        lease = self.policy.lease
        by_batch: dict[int, list] = {}
        for chunk_row in chunks:
            by_batch.setdefault(chunk_row.batch_id, []).append(chunk_row)
        window_open = self.policy.window_open(now)
        for batch in batches:
            if stale_only and batch.status == PAUSED and not window_open:
                continue  # its steps are scheduled for the window's opening already
            if batch.status in (PENDING, PARSING, PAUSED) and batch.id not in by_batch:
                until = utc(batch.lease_until)
                if stale_only and batch.status == PENDING and utc(batch.submitted_at) > now - lease:
                    continue
                if stale_only and until is not None and until > now:
                    continue
                self.scheduler.schedule_parse(batch.id, eta=until if until and until > now else None)
                scheduled += 1
                continue
            pending = by_batch.get(batch.id, [])
            if not pending:
                self.complete_if_done(batch.id)
                continue
            live = [c for c in pending if c.state == "claimed" and utc(c.lease_until) > now]
            for chunk_row in pending:
                until = utc(chunk_row.lease_until)
                if chunk_row.state == "claimed" and until > now:
                    if stale_only:
                        continue
                    self.scheduler.schedule_chunks(batch.id, [chunk_row.chunk], eta=until)
                elif chunk_row.state == "queued" and stale_only and (
                        live or utc(batch.parsed_at) > now - lease):
                    continue  # the batch is moving, or was queued moments ago: its jobs are in the queue
                else:
                    self.scheduler.schedule_chunks(batch.id, [chunk_row.chunk])
                scheduled += 1
        return scheduled

    def purge(self, now: dt.datetime | None = None) -> int:
        """Delete batches (and their outcomes) past the retention period. The ledger keeps its rows."""
        cutoff = (now or now_utc()) - self.policy.retention
        with self.database.session() as session:
            ids = list(session.scalars(select(DeviceCsrBatch.id).where(DeviceCsrBatch.submitted_at < cutoff)))
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                session.execute(delete(DeviceCsrOutcome).where(DeviceCsrOutcome.batch_id.in_(part)))
                session.execute(delete(DeviceCsrChunk).where(DeviceCsrChunk.batch_id.in_(part)))
                session.execute(delete(DeviceCsrBatch).where(DeviceCsrBatch.id.in_(part)))
        return len(ids)

    # --- reading ---------------------------------------------------------------------------------

    def view(self, batch_id: int, party_id: str) -> BatchView | None:
        """The batch, if it exists, is within retention, and belongs to ``party_id``."""
        cutoff = now_utc() - self.policy.retention
        with self.database.session() as session:
            batch = session.execute(
                select(DeviceCsrBatch.id, DeviceCsrBatch.party_id, DeviceCsrBatch.channel, DeviceCsrBatch.reference,
                       DeviceCsrBatch.status, DeviceCsrBatch.csr_count, DeviceCsrBatch.error_code,
                       DeviceCsrBatch.error_text, DeviceCsrBatch.submitted_at)
                .where(DeviceCsrBatch.id == batch_id)).one_or_none()
        if batch is None or batch.party_id != party_id or utc(batch.submitted_at) < cutoff:
            return None
        return BatchView(*batch)

    def results(self, batch_id: int, page: int = 5000) -> Iterator[tuple[CsrResult, bytes | None, str | None]]:
        """Each CSR's outcome in order, with the certificate DER when issued, and the Device ID."""
        last = -1
        while True:
            with self.database.session() as session:
                rows = session.execute(
                    select(DeviceCsrOutcome.seq, DeviceCsrOutcome.csr_ref, DeviceCsrOutcome.status,
                           DeviceCsrOutcome.error_code, DeviceCsrOutcome.error_text, DeviceCsrOutcome.device_id,
                           IssuanceRecord.certificate_der)
                    .outerjoin(IssuanceRecord, IssuanceRecord.serial == DeviceCsrOutcome.serial)
                    .where(DeviceCsrOutcome.batch_id == batch_id, DeviceCsrOutcome.seq > last)
                    .order_by(DeviceCsrOutcome.seq).limit(page)).all()
            if not rows:
                return
            for row in rows:
                yield (CsrResult(row.csr_ref, row.status, None, row.error_code, row.error_text),
                       row.certificate_der, row.device_id)
            last = rows[-1].seq
