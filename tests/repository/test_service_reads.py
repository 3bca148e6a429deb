"""The Appendix O service near the framework's ceiling (issue 12 item 4): each search or retrieval is one
statement, on a connection its thread keeps (no pool checkout, no ping, no transaction around it); the API key
is checked inside that statement, so a withdrawn key is refused by the very next request to every worker of
a running ``smki serve``; and the request log written off the request path loses nothing when the service
stops normally."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import signal
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from repository import service_reads
from repository.access import RepositoryAccess
from repository.models import RepositoryRequestLog
from repository.store import CertificateRepository, by_subject_criteria
from smki.instance import Instance
from smki.web.server import cores
from tests.repository.test_request_log import EUI, HOLDER, RETRIEVE, SEARCH, post, retrieve_body, search_body
from tests.serve.served import serving, worker_of


class Counting:
    """A DBAPI connection that counts what is sent through it."""

    def __init__(self, inner: Any, sent: list[str]) -> None:
        self.inner, self.sent = inner, sent

    def cursor(self) -> Any:
        cursor = self.inner.cursor()
        sent = self.sent

        class Cursor:
            def execute(self, sql: str, parameters: Any = None) -> Any:
                sent.append(sql)
                return cursor.execute(sql, parameters)

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        if name in ("commit", "rollback"):
            self.sent.append(name)
        return getattr(self.inner, name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent on the service's own connections, opened afresh for the test."""
    sent: list[str] = []
    opened = service_reads._open
    monkeypatch.setattr(service_reads, "_open", lambda engine: Counting(opened(engine), sent))
    service_reads.forget()
    yield sent
    service_reads.forget()


@pytest.fixture
def lodged(repository: CertificateRepository, issue: Callable[..., bytes]) -> str:
    return repository.lodge(issue("organisation", EUI)).record.serial


def test_a_search_and_a_retrieval_are_one_statement_each_and_nothing_else(
        app: Flask, api_key: str, lodged: str, instance: Instance, counted: list[str]) -> None:
    through_pool: list[str] = []
    checkouts: list[object] = []
    engine = instance.database.engine
    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", lambda *args: through_pool.append(args[2])),
        (engine.pool, "checkout", lambda *args: checkouts.append(args[0]))]
    for path, body in ((SEARCH, search_body()), (RETRIEVE, retrieve_body(lodged)),
                       (SEARCH, search_body("90-B3-D5-1F-30-01-00-99"))):
        post(app, path, body, api_key)  # warm: the thread's connection is opened by its first request
        counted.clear()
        for target, name, listener in listeners:
            event.listen(target, name, listener)
        try:
            status, _answer = post(app, path, body, api_key)
        finally:
            for target, name, listener in listeners:
                event.remove(target, name, listener)
        assert status in (200, 402)
        assert len(counted) == 1 and counted[0].lstrip().upper().startswith("SELECT"), counted
        assert through_pool == [] and checkouts == []  # no checkout, no ping, no BEGIN/ROLLBACK around it
    if engine.dialect.name == "postgresql":
        held = service_reads._local.held[instance.database.url][1]
        assert held.inner.autocommit  # so psycopg sends no BEGIN before the SELECT


def test_the_search_reads_through_indexes(instance: Instance) -> None:
    """The keyed search probes the key's unique index, then the (column, id) index, with no sort."""
    from repository.access import KEY_PARAMETER, keyed_statement

    with instance.database.engine.connect() as connection:
        for column in ("device_id", "subject_eui"):
            statement = keyed_statement(by_subject_criteria(column), 1000)
            compiled = statement.compile(connection)
            values = {**compiled.params, "subject": "00", KEY_PARAMETER: "00"}
            if connection.dialect.name == "sqlite":
                plan = " | ".join(str(row[-1]) for row in connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + str(compiled),
                    tuple(values[name] for name in compiled.positiontup or ())).all())
                assert f"ix_repository_certificate_{column}_id" in plan, plan
                assert "TEMP B-TREE" not in plan and "SCAN" not in plan, plan
            # PostgreSQL's plan depends on the table's size: bench.repository_search prints it at 1M rows


def test_a_lost_connection_is_replaced_and_the_statement_run_again(
        app: Flask, api_key: str, lodged: str, instance: Instance, counted: list[str]) -> None:
    assert post(app, SEARCH, search_body(), api_key)[0] == 200
    held = service_reads._local.held[instance.database.url][1]
    held.inner.close()  # as a database restart or a cut idle connection leaves it
    status, answer = post(app, SEARCH, search_body(), api_key)
    assert status == 200 and answer.find("Result") is not None
    assert service_reads._local.held[instance.database.url][1] is not held


def _read_in_child(url: str, key_digest: str, out: Any) -> None:
    from smki.core.db import Database

    rows = service_reads.read(Database(url), _statement(), {"subject": "00", "api_key_sha256": key_digest})
    opened_by, _connection = service_reads._local.held[Database(url).url]
    out.put((opened_by == os.getpid(), len(rows)))


def _statement() -> Any:
    from repository.access import keyed_statement

    return keyed_statement(by_subject_criteria("subject_eui"), 10)


def test_a_forked_process_opens_a_connection_of_its_own(instance: Instance, api_key: str) -> None:
    import hashlib

    digest = hashlib.sha256(api_key.encode()).hexdigest()
    service_reads.forget()
    assert len(service_reads.read(instance.database, _statement(), {"subject": "00", "api_key_sha256": digest})) == 1
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_read_in_child, args=(instance.database.url, digest, out))
    child.start()
    its_own, found = out.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and found == 1 and its_own  # not the connection it inherited from the parent
    # and the parent's connection still works after the child has exited (the child did not close it)
    assert len(service_reads.read(instance.database, _statement(), {"subject": "00", "api_key_sha256": digest})) == 1
    service_reads.forget()


def _search(connection: http.client.HTTPConnection, key: str) -> tuple[int, ET.Element]:
    connection.request("POST", f"{SEARCH}?apikey={key}", body=search_body(),
                       headers={"Content-Type": "application/xml"})
    response = connection.getresponse()
    return response.status, ET.fromstring(response.read())


def _logged(instance: Instance) -> int:
    with instance.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(RepositoryRequestLog)) or 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="smki serve runs gunicorn, which needs fork")
def test_withdrawal_reaches_every_worker_at_once_and_a_normal_stop_loses_no_log_row(
        instance: Instance, repository: CertificateRepository, issue: Callable[..., bytes], tmp_path: Path) -> None:
    repository.lodge(issue("organisation", EUI))
    access = RepositoryAccess(instance.database)
    key = access.issue_api_key(HOLDER)
    workers = max(2, cores())
    sent = 0
    with serving(instance, tmp_path, "--workers", str(workers), "--threads", "2", "--no-worker") as served:
        # one keep-alive connection held by each worker (the kernel spreads new connections over them)
        by_worker: dict[int, http.client.HTTPConnection] = {}
        for _ in range(64):
            connection = served.connect()
            worker = worker_of(connection)
            if worker in by_worker:
                connection.close()
            else:
                by_worker[worker] = connection
            if len(by_worker) == workers:
                break
        assert len(by_worker) == workers, f"connections reached only workers {sorted(by_worker)}"
        for connection in by_worker.values():
            for _ in range(3):  # every thread of the worker may have opened its connection by now
                assert _search(connection, key)[0] == 200
                sent += 1

        assert access.revoke_all(HOLDER) == 1  # as the RA does when it withdraws the ARO

        for worker, connection in by_worker.items():
            status, answer = _search(connection, key)
            sent += 1
            assert status == 401, f"worker {worker} still accepted the withdrawn key"
            assert "apikey" in (answer.findtext("ResponseMessage") or "")
            connection.close()
        served.process.send_signal(signal.SIGTERM)  # a normal stop: each worker writes its waiting rows
        served.process.wait(timeout=60)
    assert _logged(instance) == sent
