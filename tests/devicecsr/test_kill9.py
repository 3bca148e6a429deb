"""Exactly once under kill -9: real ``smki worker`` processes are SIGKILLed at random points of a batch
(while parsing, and part-way through chunks), restarted, and every CSR still ends with exactly one
outcome and at most one certificate. Runs on SQLite (embedded queue) and, with
SMKI_TEST_POSTGRES_URL, on PostgreSQL (queue in the same database)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.devicecsr.documents import check_batch_xml
from smki.devicecsr.gate import LedgerGate
from smki.devicecsr.jobs import queue_url
from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrOutcome
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.models import IssuanceRecord
from tests.devicecsr.conftest import SUPPLIER, batch_xml, csr_b64

CSRS = 3000
KILLS = 4
DEADLINE_S = 120  # a bound on waiting, not a timing assertion


def _policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, directory)
    path = directory / "device_csr_limits.yaml"
    data = yaml.safe_load(path.read_text())
    data["processing"] = {"chunk_size": 50, "lease_seconds": 2}  # many commits; quick takeover
    path.write_text(yaml.safe_dump(data))
    return directory


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "smki.cli", "worker", "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True)


def _kill(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)  # the consumer and its worker processes, mid-whatever
    worker.wait()


@pytest.fixture
def start_worker() -> Iterator[Callable[[dict[str, str], Path], subprocess.Popen[bytes]]]:
    """Starts ``smki worker`` processes and kills whatever is left of them when the test ends, however it
    ends: a failed wait must not leave workers running into the rest of the suite."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        started.append(_start_worker(env, log))
        return started[-1]

    yield start
    for worker in started:
        with contextlib.suppress(ProcessLookupError):
            _kill(worker)


def _progress(database, batch_id: int) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    with database.session() as session:
        status = session.scalar(select(DeviceCsrBatch.status).where(DeviceCsrBatch.id == batch_id))
        done = session.scalar(select(func.count()).select_from(DeviceCsrOutcome)
                              .where(DeviceCsrOutcome.batch_id == batch_id))
    return status, done


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {DEADLINE_S} s")
        time.sleep(0.01)


@pytest.mark.slow
def test_kill_minus_nine_loses_no_csr_and_issues_none_twice(instance, database_url, tmp_path, start_worker):
    rng = random.Random()
    queue = queue_url(instance)
    runtime = DeviceCsrRuntime.build(instance, gate=LedgerGate(instance.database), queue=queue)
    payload = batch_xml([(f"csr-{n}", csr_b64(0x00DB100000000000 + n)) for n in range(CSRS)])
    submission = check_batch_xml(payload, runtime.policy)
    batch_id = runtime.batches.submit(SUPPLIER, payload, channel="batch", reference=submission.reference,
                                      csr_count=CSRS)
    env = {**os.environ, "SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": database_url,
           "SMKI_POLICIES": str(_policies(tmp_path)), "SMKI_QUEUE_URL": queue,
           # the submitter is the stand-in's, so the workers decide with the stand-in gate too
           "SMKI_DEVICECSR_GATE": "smki.devicecsr.gate:ledger_gate"}
    log = tmp_path / "worker.log"
    database = instance.database

    interrupted = []
    worker = start_worker(env, log)
    _wait_for(lambda: _progress(database, batch_id)[0] != "PENDING", "parsing to start")
    _kill(worker)  # at once: usually inside parsing, or just after it
    interrupted.append(_progress(database, batch_id))
    for _ in range(KILLS - 1):
        worker = start_worker(env, log)
        _status, done = _progress(database, batch_id)
        target = rng.randint(done + 1, done + (CSRS - done) // 3)
        _wait_for(lambda target=target: _progress(database, batch_id)[1] >= target, f"{target} outcomes")
        _kill(worker)
        interrupted.append(_progress(database, batch_id))
    worker = start_worker(env, log)
    try:
        _wait_for(lambda: _progress(database, batch_id)[0] == "COMPLETED", "the batch to complete")
    finally:
        _kill(worker)

    assert any(0 < done < CSRS for _status, done in interrupted), interrupted  # kills landed mid-batch
    with database.session() as session:
        outcomes = session.execute(select(DeviceCsrOutcome.seq, DeviceCsrOutcome.status, DeviceCsrOutcome.serial)
                                   .where(DeviceCsrOutcome.batch_id == batch_id)).all()
        ledger = session.execute(select(IssuanceRecord.serial, IssuanceRecord.csr_sha256)
                                 .where(IssuanceRecord.channel == "batch")).all()
    assert sorted(seq for seq, _s, _serial in outcomes) == list(range(CSRS))  # exactly one outcome each
    assert {status for _seq, status, _serial in outcomes} == {"SUCCESS"}
    assert len(ledger) == CSRS                                              # at most one certificate each ...
    assert len({csr for _serial, csr in ledger}) == CSRS                    # ... for distinct CSRs
    assert {serial for _seq, _status, serial in outcomes} == {serial for serial, _csr in ledger}
