"""Soft limits of the real service: counted and reported per Party, warned about, enforced on request."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.devicecsr.models import DeviceCsrBatch
from smki.devicecsr.policy import load_device_csr_policy
from smki.models import IssuanceRecord
from tests.devicecsr.conftest import adhoc_xml, batch_xml, csr_b64, headers, parse_answer, seed_certificates, text

ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
SUBMIT = "/1.0/PortalCSRBatch/SubmitCSRBatch"
POLL = "/1.0/PortalCSRBatch/CSRBatchResult"
LIMITS = load_device_csr_policy(DEFAULT_POLICIES_DIR).limits


def client_with(make_runtime, app_for, enforce: bool, **limits):  # type: ignore[no-untyped-def]
    runtime = make_runtime(enforce=enforce, limits=dataclasses.replace(LIMITS, **limits))
    return app_for(runtime).test_client(), runtime


def test_adhoc_calls_faster_than_the_service_allows_are_warned_and_still_answered(make_runtime, app_for, instance):
    client, _ = client_with(make_runtime, app_for, False, adhoc_min_interval_core=3600, adhoc_min_interval_other=3600)
    seed_certificates(instance, "00DB00000000B001", 1)

    first = client.post(ADHOC, data=adhoc_xml(csr_b64("00DB00000000B001")), headers=headers())
    second = client.post(ADHOC, data=adhoc_xml(csr_b64("00DB00000000B001")), headers=headers())

    assert "X-SMKI-Limit-Warning" not in first.headers
    assert second.headers["X-SMKI-Limit-Warning"].startswith("WF:LIM1")
    assert text(parse_answer(second.data), "{}Status") == "SUCCESS"
    report = client.get("/api/v1/device-csr/limits", headers=headers()).get_json()
    assert report["party_id"] == "P-IS"
    assert report["usage"]["adhoc"] == 2 and report["exceeded"] == {"adhoc_min_interval": 1}


def test_enforced_adhoc_rate_is_a_workflow_error_that_issues_nothing(make_runtime, app_for, instance):
    client, _ = client_with(make_runtime, app_for, True, adhoc_min_interval_core=3600, adhoc_min_interval_other=3600)
    seed_certificates(instance, "00DB00000000B002", 1)

    client.post(ADHOC, data=adhoc_xml(csr_b64("00DB00000000B002")), headers=headers())
    answer = parse_answer(client.post(ADHOC, data=adhoc_xml(csr_b64("00DB00000000B002")), headers=headers()).data)

    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == ("WORKFLOW_ERROR", "WF:LIM1")
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "adhoc")) == 1


def test_batched_volume_over_24_hours_warns_or_refuses(make_runtime, app_for, instance):
    body = batch_xml([(f"c{n}", csr_b64(0x00DB00000000B100 + n)) for n in range(3)])
    warned, _ = client_with(make_runtime, app_for, False, batched_csrs_per_24h=2)
    response = warned.post(SUBMIT, data=body, headers=headers())
    assert response.headers["X-SMKI-Limit-Warning"].startswith("WF:LIM2")
    assert text(parse_answer(response.data), "{}BatchStatus") == "PENDING"

    refused, _ = client_with(make_runtime, app_for, True, batched_csrs_per_24h=2)
    answer = parse_answer(refused.post(SUBMIT, data=body, headers=headers()).data)
    assert (text(answer, "{}BatchStatus"), text(answer, "{}Error/{}ErrorCode")) == ("WORKFLOW_ERROR", "WF:LIM2")
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 1  # only the warned one


def test_polling_more_than_hourly_warns_or_is_refused(make_runtime, app_for):
    client, _runtime = client_with(make_runtime, app_for, False)
    batch_id = text(parse_answer(client.post(SUBMIT, data=batch_xml([("a", csr_b64(0x00DB00000000B201))]),
                                             headers=headers()).data), "{}BatchId")
    assert "X-SMKI-Limit-Warning" not in client.get(f"{POLL}?BatchId={batch_id}", headers=headers()).headers
    again = client.get(f"{POLL}?BatchId={batch_id}", headers=headers())
    assert again.headers["X-SMKI-Limit-Warning"].startswith("WF:LIM3")
    assert text(parse_answer(again.data), "{}BatchStatus") == "PENDING"

    strict, _ = client_with(make_runtime, app_for, True)
    answer = parse_answer(strict.get(f"{POLL}?BatchId={batch_id}", headers=headers()).data)
    assert text(answer, "{}Error/{}ErrorCode") == "WF:LIM3"


def test_a_batch_past_the_nightly_capacity_is_rejected_when_enforcing(make_runtime, app_for, instance):
    client, runtime = client_with(make_runtime, app_for, True, nightly_capacity_all_parties=2)
    body = batch_xml([(f"c{n}", csr_b64(0x00DB00000000B300 + n)) for n in range(3)])
    batch_id = text(parse_answer(client.post(SUBMIT, data=body, headers=headers()).data), "{}BatchId")

    runtime.jobs.run_pending()

    answer = parse_answer(client.get(f"{POLL}?BatchId={batch_id}", headers=headers()).data)
    assert (text(answer, "{}BatchStatus"), text(answer, "{}Error/{}ErrorCode")) == ("REJECTED", "WF:CAP1")
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)) == 0
