"""The Appendix O service at one round trip (issue 12 item 4): the API key is checked by the query that
searches, so a withdrawn key is refused at once by every app sharing the database; the request log is
written in batches off the request path, all of it at a normal exit, or on the request path when
configured durable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from repository.access import RepositoryAccess
from repository.models import RepositoryRequestLog
from repository.request_log import RequestLog, RequestLogSettings, flush_all
from repository.store import CertificateRepository
from smki.instance import Instance
from smki.web import create_app

SEARCH = "/services/certificatesearch"
RETRIEVE = "/services/retrievecertificate"
EUI = "90-B3-D5-1F-30-01-00-00"
HOLDER = "party:TEST/aro:tester"


def search_body(eui: str = EUI) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><CertificateSearchRequest><CertificateSubjectName>{eui}'
            "</CertificateSubjectName></CertificateSearchRequest>").encode()


def retrieve_body(serial: str) -> bytes:
    return (f"<CertificateDataRequest><CertificateSerial>{serial}</CertificateSerial>"
            "</CertificateDataRequest>").encode()


def post(app: Flask, path: str, body: bytes, key: str | None) -> tuple[int, ET.Element]:
    response = app.test_client().post(path, data=body, query_string={"apikey": key} if key else {},
                                      headers={"content-type": "application/xml"})
    return response.status_code, ET.fromstring(response.data)


def logged(instance: Instance) -> list[tuple[str, int, str | None]]:
    with instance.database.session() as session:
        return [(row.audit_reference, row.response_code, row.holder)
                for row in session.scalars(select(RepositoryRequestLog).order_by(RepositoryRequestLog.id))]


@pytest.fixture
def lodged(repository: CertificateRepository, issue: Callable[..., bytes]) -> str:
    return repository.lodge(issue("organisation", EUI)).record.serial


def test_a_withdrawn_key_is_refused_at_once_by_every_app_sharing_the_database(
        instance: Instance, api_key: str, lodged: str) -> None:
    first, second = create_app(instance), create_app(instance)  # two workers, say
    for app in (first, second):
        assert post(app, SEARCH, search_body(), api_key)[0] == 200
        assert post(app, RETRIEVE, retrieve_body(lodged), api_key)[0] == 200

    RepositoryAccess(instance.database).revoke_all(HOLDER)  # as the RA does when it withdraws an ARO

    for app in (first, second):
        for path, body in ((SEARCH, search_body()), (RETRIEVE, retrieve_body(lodged))):
            status, answer = post(app, path, body, api_key)
            assert status == 401
            assert "apikey" in (answer.findtext("ResponseMessage") or "")
    flush_all()


def test_a_bad_key_is_reported_before_a_bad_body(app: Flask, api_key: str) -> None:
    status, answer = post(app, SEARCH, b"<not xml", "not-a-key")
    assert status == 401 and "apikey" in (answer.findtext("ResponseMessage") or "")
    status, answer = post(app, SEARCH, b"<not xml", api_key)
    assert status == 401 and "well-formed" in (answer.findtext("ResponseMessage") or "")


def test_each_answer_is_logged_once_written(app: Flask, api_key: str, lodged: str, instance: Instance) -> None:
    answers = [post(app, SEARCH, search_body(), api_key), post(app, SEARCH, search_body("00-00-00-00-00-00-00-01"),
                                                               api_key),
               post(app, RETRIEVE, retrieve_body(lodged), None)]
    flush_all()
    expected = [(answer.findtext("AuditReference"), status, holder)
                for (status, answer), holder in zip(answers, (HOLDER, HOLDER, None), strict=True)]
    assert logged(instance) == expected
    assert [code for _, code, _ in expected] == [200, 402, 401]


def test_rows_are_written_in_batches_by_size(instance: Instance) -> None:
    request_log = RequestLog(instance.database, RequestLogSettings(flush_rows=5, flush_seconds=3600,
                                                                   max_pending=1000))
    for n in range(12):
        request_log.record(f"ref-{n}", HOLDER, "certificatesearch", 200)
    request_log.flush()
    assert [reference for reference, _, _ in logged(instance)] == [f"ref-{n}" for n in range(12)]
    assert request_log.pending == 0


def test_past_the_bound_the_request_writes_the_batch_itself(instance: Instance) -> None:
    request_log = RequestLog(instance.database, RequestLogSettings(flush_rows=1000, flush_seconds=3600,
                                                                   max_pending=3))
    for n in range(3):
        request_log.record(f"ref-{n}", None, "certificatesearch", 401)
    assert request_log.pending == 0 and len(logged(instance)) == 3


def test_durable_mode_writes_before_the_answer(instance: Instance) -> None:
    request_log = RequestLog(instance.database, RequestLogSettings(flush_seconds=0))
    request_log.record("ref-durable", HOLDER, "retrievecertificate", 402)
    assert logged(instance) == [("ref-durable", 402, HOLDER)]


def test_a_repeated_audit_reference_costs_only_its_own_row(instance: Instance) -> None:
    request_log = RequestLog(instance.database, RequestLogSettings(flush_seconds=3600))
    for reference in ("ref-a", "ref-b", "ref-a", "ref-c"):
        request_log.record(reference, HOLDER, "certificatesearch", 200)
    request_log.flush()
    assert [reference for reference, _, _ in logged(instance)] == ["ref-a", "ref-b", "ref-c"]


def test_waiting_rows_are_written_when_the_process_exits(instance: Instance) -> None:
    """A worker stopped normally (gunicorn's graceful stop, SIGTERM) loses nothing: the exit flushes."""
    script = textwrap.dedent(f"""
        from smki.core.db import Database
        from repository.request_log import RequestLogSettings, request_log_for
        request_log = request_log_for(Database({instance.database.url!r}),
                                      RequestLogSettings(flush_rows=1000, flush_seconds=3600))
        for n in range(7):
            request_log.record(f"exit-{{n}}", "party:EXIT", "certificatesearch", 200)
        assert request_log.pending == 7
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with instance.database.session() as session:
        assert session.scalar(select(func.count()).select_from(RepositoryRequestLog)) == 7


def test_kill_9_loses_only_the_rows_not_yet_written(instance: Instance) -> None:
    """What ``kill -9`` of a web worker costs, as docs/repository.md says: the rows recorded since the last
    batch was written (at most ``flush_seconds`` of that worker's traffic); every row written before stays."""
    script = textwrap.dedent(f"""
        import os, signal
        from smki.core.db import Database
        from repository.request_log import RequestLogSettings, request_log_for
        request_log = request_log_for(Database({instance.database.url!r}),
                                      RequestLogSettings(flush_rows=1000, flush_seconds=3600))
        for n in range(5):
            request_log.record(f"written-{{n}}", "party:KILL", "certificatesearch", 200)
        request_log.flush()
        for n in range(3):
            request_log.record(f"waiting-{{n}}", "party:KILL", "certificatesearch", 200)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == -9
    assert [reference for reference, _, _ in logged(instance)] == [f"written-{n}" for n in range(5)]
