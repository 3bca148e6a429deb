"""Sending as resumable runs (issue 13 item 6): a sender killed mid-chunk leaves the chunk untouched and a resumed
run sends every device exactly one command (a second would be refused by the device's anti-replay); a run's
chunks shared by workers through the estate's queue; the command line's run, resume and ceremony."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from smki.bootstrap import RECOVERY_KEY
from smki.ca.keystore import FileKeyStore
from smki.core.config import PROJECT_ROOT
from smki.estate.chunks import CLAIMED, DONE
from smki.estate.cli import estate as estate_cli
from smki.estate.jobs import EstateJobs
from smki.estate.models import EstateDevice, EstateSendChunk, EstateSendOutcome, EstateSendRun
from smki.estate.send_runs import PROCESS, WORKERS, SendRuns
from smki.estate.sending import RECOVERED, CommandSender
from smki.estate.testkeys import TestKeyStore
from smki.instance import Instance
from smki.ra.demo import seed_demo
from smki.ra.service import RegistrationAuthority
from smki.recovery import carrier
from smki.recovery.ceremony import record_decision
from smki.recovery.intake import take_into_custody
from tests.estate.conftest import issue_organisation
from tests.recovery.conftest import PASSPHRASES, Custodians, custodians, ra  # noqa: F401 (fixtures)

DEVICES, CHUNK = 6, 2


@pytest.fixture
def estate(instance: Instance, jobs: EstateJobs) -> Instance:
    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    jobs.service.create_run(DEVICES, types="ESME")
    jobs.run_pending()
    # the suppliers' new signing certificates, for the Recovery key to place
    with instance.database.session() as session:
        ids = [row[0] for row in session.execute(select(EstateDevice.device_id))]
    holders = {cell.subject_eui for device in ids for cell in _view(instance, device).cells
               if cell.role == "supplier" and cell.key_usage == "digitalSignature" and cell.subject_eui}
    for eui in holders:
        issue_organisation(instance, eui, "02", ["digitalSignature"], {})
    return instance


def _view(instance: Instance, device_id: str):  # type: ignore[no-untyped-def]
    from smki.estate import views
    return views.show(instance, device_id)


def env_of(instance: Instance) -> dict[str, str]:
    return {"SMKI_INSTANCE": str(instance.settings.instance_dir), "SMKI_DATABASE_URL": instance.settings.database_url}


def recovery_counters(instance: Instance) -> dict[str, int]:
    with instance.database.session() as session:
        return {device_id: json.loads(counters).get("1", 0) for device_id, counters in
                session.execute(select(EstateDevice.device_id, EstateDevice.counters))}


KILLER = textwrap.dedent("""
    import os, signal, sys
    from smki.estate import send_runs
    from smki.instance import Instance

    real, calls = send_runs.deliver_within, []

    def deliver_then_die(session, commands, now=None):
        calls.append(len(commands))
        delivered = real(session, commands, now)   # the chunk's devices have processed their commands ...
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)   # ... and the sender dies before its transaction commits
        return delivered

    send_runs.deliver_within = deliver_then_die
    send_runs.SendRuns(Instance.from_env()).run_here(int(sys.argv[1]))
""")


def test_a_sender_killed_mid_chunk_resumes_without_a_second_command_to_any_device(estate: Instance) -> None:
    sender = CommandSender(estate)
    order = sender.order("recovery", ["supplier"])
    runs = SendRuns(estate, sender=sender)
    run_id = runs.create(order, chunk_size=CHUNK, holder=PROCESS)
    before = recovery_counters(estate)

    killed = subprocess.run([sys.executable, "-c", KILLER, str(run_id)], cwd=PROJECT_ROOT, env={
        **_inherited(), **env_of(estate)}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    progress = runs.progress(run_id)
    assert (progress.chunks_done, progress.devices_done) == (1, CHUNK)
    with estate.database.session() as session:
        states = dict(session.execute(select(EstateSendChunk.chunk, EstateSendChunk.state)
                                      .where(EstateSendChunk.run_id == run_id)).all())
        assert sorted(states.values()) == [CLAIMED, DONE, "queued"]   # the killed chunk is still leased
        assert session.scalar(select(func.count()).select_from(EstateSendOutcome)) == CHUNK
    after_kill = recovery_counters(estate)
    sent_once = {d for d in after_kill if after_kill[d] == order.counter}
    assert len(sent_once) == CHUNK and all(after_kill[d] == before[d] for d in after_kill if d not in sent_once)

    # resumed from the command line: the leased chunk is taken back, the rest sent, nobody twice
    resumed = CliRunner().invoke(estate_cli, ["send", "--resume", str(run_id), "--json"], env=env_of(estate),
                                 catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    report = json.loads(resumed.output)
    assert report["devices"] == DEVICES and report["by_status"] == {RECOVERED: DEVICES}   # no ES:PRC4 replay
    assert set(recovery_counters(estate).values()) == {order.counter}
    outcomes = dict(runs.outcomes(run_id))
    assert len(outcomes) == DEVICES and {o.status for o in outcomes.values()} == {RECOVERED}
    # resuming a finished run sends nothing
    again = CliRunner().invoke(estate_cli, ["send", "--resume", str(run_id), "--json"], env=env_of(estate),
                               catch_exceptions=False)
    assert json.loads(again.output)["devices"] == DEVICES and runs.progress(run_id).status == "completed"


def _inherited() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("SMKI_")}


def test_a_workers_run_is_shared_through_the_queue(estate: Instance, jobs: EstateJobs) -> None:
    runs = jobs.sends
    order = runs.sender.order("recovery", ["supplier"])
    run_id = runs.create(order, chunk_size=CHUNK, holder=WORKERS)
    assert runs.progress(run_id).chunks_done == 0
    ran = jobs.run_pending()
    assert ran == DEVICES // CHUNK
    report = runs.report(run_id, collect_outcomes=True)
    assert report.by_status == {RECOVERED: DEVICES} and len(report.outcomes) == DEVICES
    assert runs.progress(run_id).status == "completed"
    curve = runs.curve(run_id)
    assert [total for _at, total in curve] == [CHUNK, 2 * CHUNK, 3 * CHUNK]
    # a job delivered twice finds nothing to claim
    jobs.schedule_send_chunks(run_id, [0])
    jobs.run_pending()
    assert runs.report(run_id).devices == DEVICES


def test_a_run_under_a_key_ceremony_from_the_command_line(estate: Instance, ra: RegistrationAuthority,  # noqa: F811
                                                          custodians: Custodians, tmp_path: Path,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    scalar = estate.keystore.signer(RECOVERY_KEY).private_numbers().private_value
    issued = take_into_custody(estate, "recovery", custodians.all(), "test")
    files = [carrier.write(tmp_path, "recovery", 1, share) for share in issued[:3]]
    # the Recovery key has left the key store (`smki custody init` removes it; made sure of here)
    held = FileKeyStore.has
    monkeypatch.setattr(FileKeyStore, "has", lambda store, label: label != RECOVERY_KEY and held(store, label))
    env = env_of(estate)
    refused = CliRunner().invoke(estate_cli, ["send", "--mode", "recovery", "--cells", "supplier"], env=env,
                                 catch_exceptions=False)
    assert refused.exit_code == 2 and "ES:SND4" in refused.output and "--ceremony-decision" in refused.output

    decision = record_decision(estate.database, ra.authenticate_token(custodians.pma.token), key_name="recovery",
                               purpose="use", reason="Recovery Scenario Exercise")
    sent = CliRunner().invoke(estate_cli, ["send", "--mode", "recovery", "--cells", "supplier", "--ceremony-decision",
                                           str(decision), *[a for f in files for a in ("--custodian-share", str(f))],
                                           "--chunk-size", "4"],
                              env=env, input="".join(f"{p}\n" for p in PASSPHRASES[:3]), catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    assert re.search(rf"{DEVICES} devices, {DEVICES} answered, {DEVICES} responses verified", sent.output)
    # the key signed every command, and is written nowhere: not in the run's rows, not on the queue
    with estate.database.session() as session:
        stored = " ".join(repr(value) for model in (EstateSendRun, EstateSendChunk, EstateSendOutcome)
                          for row in session.execute(select(model.__table__)) for value in row)
    assert stored and all(form not in stored for form in (f"{scalar:x}", f"{scalar:X}", str(scalar),
                                                          repr(scalar.to_bytes(32, "big"))))
    queue = Path(estate.settings.instance_dir)
    for path in queue.rglob("*queue*"):
        assert scalar.to_bytes(32, "big") not in path.read_bytes()
    # the decision is spent: the same decision cannot open a second ceremony
    again = CliRunner().invoke(estate_cli, ["send", "--mode", "recovery", "--cells", "supplier", "--ceremony-decision",
                                            str(decision), "--custodian-share", str(files[0])], env=env,
                               input=f"{PASSPHRASES[0]}\n", catch_exceptions=False)
    assert again.exit_code == 2 and "RC:CER01" in again.output


def test_real_workers_killed_mid_run_lose_nothing_and_send_nobody_twice(instance: Instance, jobs: EstateJobs,
                                                                        tmp_path: Path) -> None:
    """``smki estate worker`` processes share a send run's chunks; SIGKILLed mid-run, the run resumed ends with
    every device recovered by exactly one command."""
    import os
    import signal
    import time

    from sqlalchemy import update

    from smki.estate import service as estate_service

    seed_demo(instance)
    TestKeyStore(instance).issue_test_credentials()
    devices = 120
    jobs.service.create_run(devices, types="CHF")
    jobs.run_pending()
    queue = f"sqlite:///{tmp_path / 'send-queue.db'}"
    shared = EstateJobs.build(instance, queue)
    order = shared.sends.sender.order("recovery", ["accessControlBroker", "wanProvider"])
    run_id = shared.sends.create(order, chunk_size=2, holder=WORKERS)
    env = {**os.environ, **env_of(instance), "SMKI_POLICIES": str(instance.settings.policies_dir)}
    with (tmp_path / "workers.log").open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "smki.estate.cli", "worker", "--workers", "2",
                                   "--queue", queue], env=env, stdout=subprocess.DEVNULL, stderr=log,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while shared.sends.progress(run_id).devices_done < 10:
                assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()[-3000:]
                time.sleep(0.02)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)   # the consumer and its workers, mid-run
            worker.wait()
    assert shared.sends.progress(run_id).devices_done < devices
    # leases of chunks the killed workers held would run out (lease_seconds); here they have
    with instance.database.session() as session:
        session.execute(update(EstateSendChunk).where(EstateSendChunk.state == CLAIMED)
                        .values(lease_until=estate_service.now_utc()))
    shared.sends.resume(run_id)
    shared.run_pending()
    progress = shared.sends.progress(run_id)
    assert progress.status == "completed" and progress.devices_done == devices
    report = shared.sends.report(run_id)
    assert report.by_status == {RECOVERED: devices}, report.problems   # a second command would be ES:PRC4
    assert set(recovery_counters(instance).values()) == {order.counter}
