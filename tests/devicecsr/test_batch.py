"""Batched Device CSR web service: submit, background processing, poll, per-CSR outcomes."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from sqlalchemy import func, select, update

from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrChunk, DeviceCsrOutcome
from smki.models import IssuanceRecord
from tests.devicecsr.conftest import (
    OWNED_DEVICE,
    bad_signature_b64,
    batch_xml,
    csr_b64,
    headers,
    parse_answer,
    seed_certificates,
    text,
)

SUBMIT = "/1.0/PortalCSRBatch/SubmitCSRBatch"
POLL = "/1.0/PortalCSRBatch/CSRBatchResult"


def submit(client, entries, caller="supplier"):  # type: ignore[no-untyped-def]
    response = client.post(SUBMIT, data=batch_xml(entries), headers=headers(caller))
    assert response.status_code == 200
    return parse_answer(response.data)


def poll(client, batch_id, caller="supplier"):  # type: ignore[no-untyped-def]
    response = client.get(f"{POLL}?BatchId={batch_id}", headers=headers(caller))
    assert response.status_code == 200
    return parse_answer(response.data)


def outcomes(root):  # type: ignore[no-untyped-def]
    ns = "{urn:smki-sandbox:device-csr:1.0}"
    return {e.get("ID"): (e.findtext(f"{ns}Status"), e.findtext(f"{ns}Certificate"),
                          e.findtext(f"{ns}Error/{ns}ErrorCode")) for e in root.iter(f"{ns}DeviceCertificate")}


def test_submit_answers_pending_and_the_poll_follows_the_batch_to_completed(client, runtime, instance):
    entries = [(f"csr-{n}", csr_b64(0x00DB000000001000 + n)) for n in range(5)]

    answer = submit(client, entries)

    assert text(answer, "{}BatchStatus") == "PENDING"
    batch_id = int(text(answer, "{}BatchId"))
    assert answer.get("ID") == "batch-1"
    assert text(poll(client, batch_id), "{}BatchStatus") == "PENDING"
    assert runtime.jobs.run_pending() > 0
    result = poll(client, batch_id)
    assert text(result, "{}BatchStatus") == "COMPLETED"
    found = outcomes(result)
    assert set(found) == {ident for ident, _ in entries}
    issuing_dca = instance.hierarchy.certificate("issuing_dca")
    for ident, csr in entries:
        status, certificate, _code = found[ident]
        assert status == "SUCCESS"
        issued = x509.load_der_x509_certificate(base64.b64decode(certificate))
        issued.verify_directly_issued_by(issuing_dca)
        requested = x509.load_der_x509_csr(base64.b64decode(csr))
        assert issued.public_key() == requested.public_key()
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "batch")) == 5


def test_every_per_csr_status_with_its_code(client, runtime, instance, monkeypatch):
    seed_certificates(instance, "00DB000000002002", 100)
    failing = "00DB000000002005"
    original = instance.ca.issue

    def issue(request, **kwargs):  # type: ignore[no-untyped-def]
        if request.device_id is not None and request.device_id.hex == failing:
            from smki.core.errors import IssuanceFailed
            raise IssuanceFailed("CA:E299", "the signing key is unavailable.")
        return original(request, **kwargs)

    monkeypatch.setattr(instance.ca, "issue", issue)
    same = csr_b64(0x00DB000000002004)
    entries = [("ok", csr_b64(0x00DB000000002001)), ("anomaly", csr_b64(0x00DB000000002002)),
               ("ineligible", csr_b64(OWNED_DEVICE)), ("bad-signature", bad_signature_b64(0x00DB000000002003)),
               ("first", same), ("again", same), ("ca-failure", csr_b64(failing))]

    batch_id = int(text(submit(client, entries), "{}BatchId"))
    runtime.jobs.run_pending()

    found = outcomes(poll(client, batch_id))
    assert {k: (v[0], v[2]) for k, v in found.items()} == {
        "ok": ("SUCCESS", None), "anomaly": ("ISSUANCE_ANOMALY", "CA:ANOM1"),
        "ineligible": ("INELIGIBLE", "IN:STATE1"), "bad-signature": ("CSR_ERROR", "CR:CSR15"),
        "first": ("SUCCESS", None), "again": ("WORKFLOW_ERROR", "WF:DUP1"),
        "ca-failure": ("CA_ERROR", "CA:E299")}
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "batch")) == 2


def test_only_the_submitting_party_reads_its_batch(client, runtime):
    batch_id = int(text(submit(client, [("a", csr_b64(0x00DB000000003001))]), "{}BatchId"))
    runtime.jobs.run_pending()

    answer = poll(client, batch_id, caller="other")

    assert text(answer, "{}Error/{}ErrorCode") == "FM:AA3"
    assert text(answer, "{}BatchStatus") is None
    assert text(poll(client, 999999), "{}Error/{}ErrorCode") == "FM:AA3"
    assert text(poll(client, "abc"), "{}Error/{}ErrorCode") == "FM:AA3"


def test_a_party_that_is_not_a_device_subscriber_gets_workflow_error_and_nothing_is_stored(client, instance):
    answer = submit(client, [("a", csr_b64(0x00DB000000003002))], caller="outsider")

    assert text(answer, "{}BatchStatus") == "WORKFLOW_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "WF:SUB1"
    unknown = client.post(SUBMIT, data=batch_xml([("a", csr_b64(1))]), headers={"X-SMKI-Client": "nobody"})
    assert text(parse_answer(unknown.data), "{}Error/{}ErrorCode") == "WF:AUTH2"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0


def test_results_are_kept_for_the_retention_period_then_purged(client, runtime, instance):
    batch_id = int(text(submit(client, [("a", csr_b64(0x00DB000000003003))]), "{}BatchId"))
    runtime.jobs.run_pending()
    assert text(poll(client, batch_id), "{}BatchStatus") == "COMPLETED"

    assert runtime.batches.purge(dt.datetime.now(dt.UTC) + dt.timedelta(days=29)) == 0
    assert runtime.batches.purge(dt.datetime.now(dt.UTC) + dt.timedelta(days=31)) == 1

    assert text(poll(client, batch_id), "{}Error/{}ErrorCode") == "FM:AA3"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 0
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "batch")) == 1  # the ledger keeps its record


def test_tampered_content_is_detected_when_parsed(client, runtime, instance):
    entries = [("a", csr_b64(0x00DB000000003004))]
    batch_id = int(text(submit(client, entries), "{}BatchId"))
    with instance.database.session() as session:
        session.execute(update(DeviceCsrBatch).where(DeviceCsrBatch.id == batch_id)
                        .values(payload=batch_xml([*entries, ("b", csr_b64(0x00DB000000003005))])))

    runtime.jobs.run_pending()

    answer = poll(client, batch_id)
    assert text(answer, "{}BatchStatus") == "TAMPERED"
    assert text(answer, "{}Error/{}ErrorCode") == "WF:TAMP1"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 0


def test_stored_content_that_no_longer_parses_is_a_format_error(client, runtime, instance):
    import hashlib

    batch_id = int(text(submit(client, [("a", csr_b64(0x00DB000000003006))]), "{}BatchId"))
    broken = b"<SubmitCSRBatch"
    with instance.database.session() as session:
        session.execute(update(DeviceCsrBatch).where(DeviceCsrBatch.id == batch_id)
                        .values(payload=broken, payload_sha256=hashlib.sha256(broken).hexdigest()))

    runtime.jobs.run_pending()

    answer = poll(client, batch_id)
    assert text(answer, "{}BatchStatus") == "FORMAT_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "FM:AA1"


def test_batch_states_pending_parsing_queued_processing_completed(client, make_runtime, app_for, instance):
    runtime = make_runtime(chunk_size=2)
    client = app_for(runtime).test_client()
    entries = [(f"c{n}", csr_b64(0x00DB000000004000 + n)) for n in range(4)]
    batch_id = int(text(submit(client, entries), "{}BatchId"))
    service = runtime.batches

    def status() -> str:
        return text(poll(client, batch_id), "{}BatchStatus")

    assert status() == "PENDING"
    with instance.database.session() as session:  # a worker has claimed it and is parsing
        session.execute(update(DeviceCsrBatch).where(DeviceCsrBatch.id == batch_id).values(status="PARSING"))
    assert status() == "PARSING"
    with instance.database.session() as session:
        session.execute(update(DeviceCsrBatch).where(DeviceCsrBatch.id == batch_id).values(status="PENDING"))
    service.parse(batch_id)
    assert status() == "QUEUED"
    assert service.process_chunk(batch_id, 0) == 2
    assert status() == "PROCESSING"
    assert outcomes(poll(client, batch_id)) == {}  # results only once COMPLETED
    assert service.process_chunk(batch_id, 0) == 0  # done already: a second delivery changes nothing
    assert service.process_chunk(batch_id, 1) == 2
    assert status() == "COMPLETED"
    runtime.jobs.run_pending()  # the queued duplicates of both chunks and the parse find nothing to do
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 4
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 4


def test_outside_the_processing_window_a_batch_is_paused_then_resumes(make_runtime, app_for, instance):
    from smki.devicecsr.policy import DailyWindow

    now = dt.datetime.now(dt.UTC)
    closed = DailyWindow((now + dt.timedelta(hours=2)).time(), (now + dt.timedelta(hours=3)).time(), dt.UTC)
    paused_rt = make_runtime(processing_window=closed)
    client = app_for(paused_rt).test_client()
    batch_id = int(text(submit(client, [("a", csr_b64(0x00DB000000005001))]), "{}BatchId"))

    paused_rt.jobs.run_pending()

    assert text(poll(client, batch_id), "{}BatchStatus") == "PAUSED"
    assert paused_rt.jobs.huey.scheduled_count() == 1  # parsing waits for the window to open
    assert paused_rt.batches.recover(stale_only=True) == 0  # and the sweep does not pile up more
    open_rt = make_runtime()  # the window opens
    open_rt.batches.recover()
    open_rt.jobs.run_pending()
    assert text(poll(client, batch_id), "{}BatchStatus") == "COMPLETED"


def test_a_stale_worker_cannot_commit_a_chunk_another_worker_took_over(client, runtime, instance):
    batch_id = int(text(submit(client, [("a", csr_b64(0x00DB000000006001))]), "{}BatchId"))
    service = runtime.batches
    service.parse(batch_id)
    # Worker A claims the chunk, then stalls past its lease: simulated by signing inside A's claim
    # while worker B takes the expired lease over and finishes first.
    from smki.devicecsr import pipeline

    real_sign = pipeline.sign
    took_over = []

    def slow_sign(*args, **kwargs):  # type: ignore[no-untyped-def]
        rows = real_sign(*args, **kwargs)
        if not took_over:
            took_over.append(True)
            with instance.database.session() as session:
                session.execute(update(DeviceCsrChunk).where(DeviceCsrChunk.batch_id == batch_id)
                                .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
            assert service.process_chunk(batch_id, 0) == 1  # worker B
        return rows

    pipeline.sign = slow_sign
    try:
        assert service.process_chunk(batch_id, 0) == 0  # worker A's late commit is discarded
    finally:
        pipeline.sign = real_sign
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 1
        assert session.scalar(select(func.count()).select_from(DeviceCsrOutcome)) == 1
