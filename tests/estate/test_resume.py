"""An interrupted run resumes where it stopped: chunks are whole or absent, never built twice, and a chunk that
fails is retried, or left failed and retried on resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from smki.core.errors import SmkiError
from smki.estate import service as estate_service
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateChunk, EstateDevice
from smki.instance import Instance
from smki.models import IssuanceRecord
from tests.estate.conftest import Population, count

DEADLINE_S = 180  # a bound on waiting, not a timing assertion


def _estate_certificates(instance: Instance) -> int:
    with instance.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(IssuanceRecord)
                                  .where(IssuanceRecord.channel == "estate")) or 0)


def _assert_whole(instance: Instance, devices: int) -> None:
    with instance.database.session() as session:
        rows = session.execute(select(EstateDevice.number, EstateDevice.cells).order_by(EstateDevice.number)).all()
    assert [row.number for row in rows] == list(range(devices))
    assert [len(json.loads(row.cells)) for row in rows] == [9 if n % 2 == 0 else 4 for n in range(devices)]
    assert _estate_certificates(instance) == 2 * devices  # none issued for a chunk that did not commit


def test_an_interrupted_run_resumes_where_it_stopped(instance: Instance, population: Population,
                                                     jobs: EstateJobs, tmp_path: Path) -> None:
    run_id = jobs.service.create_run(20, types="ESME,CHF", chunk_size=5)
    assert jobs.run_pending(limit=2) == 2       # the process stops after two chunks
    assert jobs.service.progress(run_id).devices_done == 10
    # A new process on a new queue (the old queue lost): resume finds the chunks not done in the database.
    fresh = EstateJobs.build(instance, f"sqlite:///{tmp_path / 'another-queue.db'}")
    assert fresh.service.resume() == run_id
    assert fresh.run_pending() == 2
    progress = fresh.service.progress(run_id)
    assert (progress.status, progress.devices_done) == ("completed", 20)
    _assert_whole(instance, 20)
    # Running every job again changes nothing: each chunk is claimed once.
    assert jobs.run_pending() == 2
    _assert_whole(instance, 20)


def test_a_failing_chunk_leaves_nothing_and_is_retried(instance: Instance, population: Population,
                                                       jobs: EstateJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    original = estate_service.EstateService._build
    failures = {"left": 1}

    def flaky(self, run_id, chunk, token, plan, first, size):  # type: ignore[no-untyped-def]
        if chunk == 1 and failures["left"]:
            failures["left"] -= 1
            # fail after the certificates were signed and the devices made, inside the chunk's transaction
            self.lodging.within = _boom
            try:
                return original(self, run_id, chunk, token, plan, first, size)
            finally:
                del self.lodging.within
        return original(self, run_id, chunk, token, plan, first, size)

    monkeypatch.setattr(estate_service, "RETRY_DELAY", estate_service.dt.timedelta(0))
    monkeypatch.setattr(estate_service.EstateService, "_build", flaky)
    run_id = jobs.service.create_run(12, types="ESME,CHF", chunk_size=4)
    jobs.run_pending()
    assert failures["left"] == 0
    assert jobs.service.progress(run_id).status == "completed"
    _assert_whole(instance, 12)


def _boom(*_args, **_kwargs):  # type: ignore[no-untyped-def]
    raise RuntimeError("the database went away mid-chunk")


def test_a_refused_chunk_fails_with_its_code_and_resume_retries_it(instance: Instance, population: Population,
                                                                   jobs: EstateJobs,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = jobs.service.create_run(8, types="ESME,CHF", chunk_size=4)
    refusal = SmkiError("CA:E503", "the issuing DCA certificate expired")
    monkeypatch.setattr(jobs.service.issuance, "issuer_refusal", lambda *args, **kwargs: refusal)
    jobs.run_pending()
    progress = jobs.service.progress(run_id)
    assert (progress.status, progress.chunks_failed, progress.devices_done) == ("running", 2, 0)
    assert progress.failures[0][1] == "CA:E503"
    assert count(instance, EstateDevice) == 0 and _estate_certificates(instance) == 0
    monkeypatch.undo()
    jobs.service.resume(run_id)
    jobs.run_pending()
    assert jobs.service.progress(run_id).status == "completed"
    _assert_whole(instance, 8)


def test_killed_workers_lose_nothing(instance: Instance, population: Population, tmp_path: Path) -> None:
    """Real ``smki estate worker`` processes SIGKILLed mid-run; a resumed run ends whole, each device once."""
    queue = f"sqlite:///{tmp_path / 'estate-queue.db'}"
    jobs = EstateJobs.build(instance, queue)
    devices = 400
    run_id = jobs.service.create_run(devices, types="ESME,CHF", chunk_size=20)
    env = {**os.environ, "SMKI_INSTANCE": str(instance.settings.instance_dir),
           "SMKI_DATABASE_URL": instance.settings.database_url, "SMKI_POLICIES": str(instance.settings.policies_dir)}
    log = (tmp_path / "workers.log").open("ab")
    for _kill_round in range(2):
        worker = subprocess.Popen([sys.executable, "-m", "smki.estate.cli", "worker", "--workers", "2",
                                   "--queue", queue], env=env, stdout=subprocess.DEVNULL, stderr=log,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + DEADLINE_S
            before = jobs.service.progress(run_id).devices_done
            while jobs.service.progress(run_id).devices_done < min(devices, before + 60):
                assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()[-3000:]
                time.sleep(0.05)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)   # the consumer and its workers, mid-chunk
            worker.wait()
    assert jobs.service.progress(run_id).devices_done < devices
    # Chunks claimed by the killed workers hold leases (policies/estate.yaml lease_seconds); here they have run
    # out, and a resumed run takes those chunks over with the rest.
    with instance.database.session() as session:
        session.execute(update(EstateChunk).where(EstateChunk.state == "claimed")
                        .values(lease_until=estate_service.now_utc()))
    jobs.service.resume(run_id)
    jobs.run_pending()
    assert jobs.service.progress(run_id).status == "completed"
    _assert_whole(instance, devices)
