"""Malformed, hostile and oversized XML: each gets its coded answer, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from smki.devicecsr.models import DeviceCsrBatch
from smki.devicecsr.xml import NAMESPACE
from smki.models import IssuanceRecord
from tests.devicecsr.conftest import adhoc_xml, batch_xml, csr_b64, headers, parse_answer, seed_certificates, text

SUBMIT = "/1.0/PortalCSRBatch/SubmitCSRBatch"
ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
CSR = csr_b64(0x00DB000000008001)

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10))
          + "]>")
EXTERNAL = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def hostile_batches() -> dict[str, bytes]:
    ok = batch_xml([("a", CSR)]).decode()
    body = ok.split("?>", 1)[1]
    return {
        "not-xml": b"this is not XML",
        "empty": b"",
        "truncated": ok[:-20].encode(),
        "billion-laughs": (LAUGHS + body.replace(">1.0<", ">&lol9;<")).encode(),
        "external-entity": (EXTERNAL + body.replace(">1.0<", ">&xxe;<")).encode(),
        "wrong-namespace": batch_xml([("a", CSR)], namespace="urn:example:other"),
        "no-namespace": ok.replace(f' xmlns="{NAMESPACE}"', "").encode(),
        "wrong-root": ok.replace("SubmitCSRBatch", "SubmitCSRBatches").encode(),
        "duplicate-ids": batch_xml([("same", CSR), ("same", csr_b64(0x00DB000000008002))]),
        "id-too-long": batch_xml([("x" * 101, CSR)]),
        "no-csrs": batch_xml([]),
        "pem-armour": batch_xml([("a", f"-----BEGIN CERTIFICATE REQUEST-----{CSR}-----END CERTIFICATE REQUEST-----")]),
        "white-space-in-csr": batch_xml([("a", CSR[:40] + "\n" + CSR[40:])]),
        "wrong-version": ok.replace(">1.0<", ">2.0<").encode(),
        "batch-id-missing": ok.replace(' ID="batch-1"', "").encode(),
    }


@pytest.mark.parametrize("case", list(hostile_batches()))
def test_a_bad_batch_is_a_format_error_and_stores_nothing(client, instance, case):
    response = client.post(SUBMIT, data=hostile_batches()[case], headers=headers())

    assert response.status_code == 200
    answer = parse_answer(response.data)
    assert text(answer, "{}BatchStatus") == "FORMAT_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "FM:AA1"
    assert text(answer, "{}BatchId") is None
    assert b"root:" not in response.data  # no file content leaks through an entity
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0


def test_entities_are_named_in_the_answer(client):
    answer = parse_answer(client.post(SUBMIT, data=hostile_batches()["billion-laughs"], headers=headers()).data)
    assert "DOCTYPE" in text(answer, "{}Error/{}ErrorText")
    answer = parse_answer(client.post(SUBMIT, data=hostile_batches()["duplicate-ids"], headers=headers()).data)
    assert "'same' is used twice" in text(answer, "{}Error/{}ErrorText")
    answer = parse_answer(client.post(SUBMIT, data=hostile_batches()["wrong-namespace"], headers=headers()).data)
    assert "namespace" in text(answer, "{}Error/{}ErrorText")


def test_more_than_50000_csrs_rejects_the_whole_batch(client, instance):
    element = f'<DeviceCSR ID="c%d">{CSR}</DeviceCSR>'
    body = "".join(element % n for n in range(50_001))
    payload = (f'<SubmitCSRBatch xmlns="{NAMESPACE}" ID="big"><Version>1.0</Version>{body}</SubmitCSRBatch>').encode()

    answer = parse_answer(client.post(SUBMIT, data=payload, headers=headers()).data)

    assert text(answer, "{}BatchStatus") == "FORMAT_ERROR"
    assert text(answer, "{}Error/{}ErrorCode") == "FM:AA2"
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(DeviceCsrBatch)) == 0


def test_an_oversized_request_is_refused_before_parsing(make_runtime, app_for, instance):
    runtime = make_runtime(max_batch_bytes=2000, max_adhoc_bytes=600)
    client = app_for(runtime).test_client()

    batch = parse_answer(client.post(SUBMIT, data=batch_xml([(f"c{n}", CSR) for n in range(10)]),
                                     headers=headers()).data)
    adhoc = parse_answer(client.post(ADHOC, data=adhoc_xml(CSR).replace(b"req-1", b"r" * 32) + b" " * 600,
                                     headers=headers()).data)

    assert (text(batch, "{}BatchStatus"), text(batch, "{}Error/{}ErrorCode")) == ("FORMAT_ERROR", "FM:AA1")
    assert "at most 2000" in text(batch, "{}Error/{}ErrorText")
    assert (text(adhoc, "{}Status"), text(adhoc, "{}Error/{}ErrorCode")) == ("FORMAT_ERROR", "FM:AH1")


def hostile_adhoc() -> dict[str, bytes]:
    ok = adhoc_xml(CSR).decode()
    return {
        "not-xml": b"<<<",
        "billion-laughs": (LAUGHS + ok.replace(">1.0<", ">&lol9;<")).encode(),
        "external-entity": (EXTERNAL + ok.replace(">1.0<", ">&xxe;<")).encode(),
        "wrong-namespace": ok.replace(NAMESPACE, "urn:example:other").encode(),
        "id-too-long": adhoc_xml(CSR, "x" * 33),
        "no-csr": ok.replace(f"<CertificateSigningRequest>{CSR}</CertificateSigningRequest>", "").encode(),
        "pem-armour": adhoc_xml("-----BEGIN CERTIFICATE REQUEST-----" + CSR),
        "two-csrs": ok.replace("</CertificateSigningRequest>",
                               f"</CertificateSigningRequest><CertificateSigningRequest>{CSR}"
                               "</CertificateSigningRequest>").encode(),
    }


@pytest.mark.parametrize("case", list(hostile_adhoc()))
def test_a_bad_adhoc_request_is_a_format_error_without_echoing_an_id(client, instance, case):
    seed_certificates(instance, "00DB000000008001", 1)

    response = client.post(ADHOC, data=hostile_adhoc()[case], headers=headers())

    assert response.status_code == 200
    answer = parse_answer(response.data)
    assert (text(answer, "{}Status"), text(answer, "{}Error/{}ErrorCode")) == ("FORMAT_ERROR", "FM:AH1")
    assert answer.get("ID") is None
    assert b"root:" not in response.data
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(IssuanceRecord)
                              .where(IssuanceRecord.channel == "adhoc")) == 0


def test_a_body_past_the_apps_own_limit_is_still_answered_in_xml(runtime, app_for):
    app = app_for(runtime)
    app.config["MAX_CONTENT_LENGTH"] = 1000
    client = app.test_client()

    response = client.post(ADHOC, data=adhoc_xml(CSR) + b" " * 2000, headers=headers())

    assert response.status_code == 200
    assert text(parse_answer(response.data), "{}Status") == "FORMAT_ERROR"
