"""The job queue's modes, recovery of abandoned steps, the request schema, and the policy file."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from sqlalchemy import func, select, update

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.devicecsr import xml
from smki.devicecsr.batches import BatchService
from smki.devicecsr.documents import check_batch_xml
from smki.devicecsr.jobs import DeviceCsrJobs, build_huey
from smki.devicecsr.models import DeviceCsrChunk, DeviceCsrOutcome
from smki.devicecsr.policy import DailyWindow, load_device_csr_policy
from tests.devicecsr.conftest import SUPPLIER, batch_xml, csr_b64
from tests.devicecsr.test_xml_hardening import hostile_adhoc, hostile_batches

LONDON = ZoneInfo("Europe/London")


def test_the_shipped_policy_is_always_open_keeps_30_days_and_takes_50000():
    policy = load_device_csr_policy(DEFAULT_POLICIES_DIR)
    assert policy.processing_window is None and policy.window_open(dt.datetime.now(dt.UTC))
    assert policy.retention == dt.timedelta(days=30)
    assert policy.max_batch_csrs == 50_000 and policy.certificate_threshold == 100
    assert policy.enforce is False


def test_an_overnight_window_wraps_past_midnight():
    night = DailyWindow(dt.time(20), dt.time(8), LONDON)
    at = lambda h: dt.datetime(2026, 1, 15, h, 30, tzinfo=LONDON)  # noqa: E731
    assert night.contains(at(23)) and night.contains(at(3)) and not night.contains(at(12))
    assert night.next_opening(at(12)) == dt.datetime(2026, 1, 15, 20, 0, tzinfo=LONDON)
    assert night.next_opening(at(23)) == at(23)


def test_the_request_schema_accepts_exactly_what_the_published_xsd_accepts():
    documents = [*hostile_batches().values(), *hostile_adhoc().values(), batch_xml([("a", csr_b64(1))])]
    policy = load_device_csr_policy(DEFAULT_POLICIES_DIR)
    checked = 0
    for document in documents:
        if b"<!DOCTYPE" in document:
            continue  # refused before validation
        try:
            root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            continue
        try:
            if b"SubmitCSRBatch" in document:
                check_batch_xml(document, policy)
            else:
                xml.validate(xml.parse(document, max_bytes=10**6, root="DeviceCertificateSigningRequest",
                                       code="FM:AH1"), "FM:AH1")
            fast = True
        except xml.XmlRejected:
            fast = False
        assert fast == xml.schema().validate(root), document[:200]
        checked += 1
    assert checked >= 15


def _run_batch_through(huey, instance, gate) -> int:  # type: ignore[no-untyped-def]
    from smki.devicecsr.policy import load_device_csr_policy

    policy = load_device_csr_policy(instance.settings.policies_dir)
    jobs = DeviceCsrJobs(huey, lambda scheduler: BatchService(instance, gate, policy, scheduler))
    payload = batch_xml([(f"c{n}", csr_b64(0x00DB00000000C000 + n)) for n in range(3)])
    batch_id = jobs.service.submit(SUPPLIER, payload, channel="batch", reference="r", csr_count=3)
    jobs.run_pending()
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(DeviceCsrOutcome)
                              .where(DeviceCsrOutcome.batch_id == batch_id, DeviceCsrOutcome.status == "SUCCESS"))


def test_the_redis_queue_mode_processes_a_batch(instance, gate):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    huey = build_huey(url, name=f"smki-test-{uuid.uuid4().hex}")
    try:
        assert _run_batch_through(huey, instance, gate) == 3
    finally:
        huey.storage.flush_all()


def test_a_chunk_abandoned_by_a_dead_worker_is_picked_up_by_the_sweep(instance, runtime):
    batch_id = runtime.batches.submit(SUPPLIER, batch_xml([("a", csr_b64(0x00DB00000000C101))]), channel="batch",
                                      reference="r", csr_count=1)
    runtime.batches.parse(batch_id)
    runtime.jobs.huey.flush()  # the queued chunk job died with its worker
    with instance.database.session() as session:  # ... which had claimed the chunk
        session.execute(update(DeviceCsrChunk).values(state="claimed", lease_token="dead",
                                                      lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
    assert runtime.batches.recover(stale_only=True) == 0  # the lease is still live: leave it alone
    with instance.database.session() as session:
        session.execute(update(DeviceCsrChunk).values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))

    assert runtime.batches.recover(stale_only=True) == 1
    runtime.jobs.run_pending()

    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 1


def test_a_chunk_that_fails_is_handed_back_and_retried_and_a_poison_chunk_ends_as_ca_error(
        instance, runtime, monkeypatch):
    from smki.devicecsr import pipeline

    service = runtime.batches
    batch_id = service.submit(SUPPLIER, batch_xml([("a", csr_b64(0x00DB00000000C201))]), channel="batch",
                              reference="r", csr_count=1)
    service.parse(batch_id)
    real_sign = pipeline.sign
    monkeypatch.setattr(pipeline, "sign", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("HSM offline")))

    assert service.process_chunk(batch_id, 0) == 0
    with instance.database.session() as session:
        chunk = session.scalars(select(DeviceCsrChunk)).one()
        assert (chunk.state, chunk.attempts) == ("queued", 1)  # handed back, nothing written
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 0
        session.execute(update(DeviceCsrChunk).values(attempts=5))  # it kept failing

    monkeypatch.setattr(pipeline, "sign", real_sign)
    assert service.process_chunk(batch_id, 0) == 1
    with instance.database.session() as session:
        outcome = session.scalars(select(DeviceCsrOutcome)).one()
    assert (outcome.status, outcome.error_code) == ("CA_ERROR", "CA:E510")
