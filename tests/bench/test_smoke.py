"""The benchmarks' own machinery: what they make is removed however they end, and the bare baseline signs the
certificate the CA signs. (The benchmarks themselves are long and stay out of the suite: ``python -m bench``.)

A benchmark's folder, its process group (a leader and the process it started, as gunicorn starts workers)
and, on PostgreSQL, its database must all be gone after a normal return, an exception, SIGTERM, SIGINT
(Ctrl-C) and SIGHUP; after SIGKILL, which nothing can catch, the leader is still told to stop and the next
run drops the database.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.baseline import DeviceLoop, gbcs_subject_key_identifier
from bench.scratch import group_processes
from smki.ca.builder import CertificateRequest
from smki.ca.identifiers import subject_key_identifier
from smki.core.config import PROJECT_ROOT
from smki.core.db import normalise_url
from smki.core.eui64 import Eui64
from smki.csrgen import device_csr
from smki.instance import Instance
from tests.conftest import postgres_url

# A benchmark in miniature: a folder, a process group whose leader has started a process of its own, and on
# PostgreSQL a database; it says what it made, then ends as the test asks.
BENCHMARK = """
import json, os, sys, time
from bench.scratch import group_processes, scratch

mode, server = sys.argv[1], sys.argv[2] or None
work = scratch().directory("smki-bench-test-")
leader = [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"]
process = scratch().spawn(leader, env=dict(os.environ), log=work / "leader.log", grace=5)
database = scratch().database(server) if server else None
deadline = time.monotonic() + 10
while len(group_processes(process.pid)) < 2 and time.monotonic() < deadline:  # the leader's own child is up
    time.sleep(0.05)
assert len(group_processes(process.pid)) == 2
print(json.dumps({"directory": str(work), "group": process.pid, "database": database}), flush=True)
if mode == "raise":
    raise RuntimeError("a benchmark failing half-way")
if mode == "wait":
    time.sleep(30)
"""


def start(mode: str, database: bool = True) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    server = (postgres_url() or "") if database else ""
    child = subprocess.Popen(
        [sys.executable, "-c", BENCHMARK, mode, server], cwd=PROJECT_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        # Ctrl-C as a terminal sends it, even when this test runs where SIGINT is ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, child.communicate(timeout=120)[1]
    return child, json.loads(line)


def live(group: int) -> list[int]:
    return [pid for pid, state, _fields in group_processes(group) if state != "Z"]


def databases() -> list[str]:
    url = postgres_url()
    if not url:
        return []
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return list(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        admin.dispose()


def wait_gone(group: int, seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while live(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    return live(group)


@pytest.mark.parametrize("ending", ["return", "raise", signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["return", "exception", "SIGTERM", "SIGINT", "SIGHUP"])
def test_a_benchmark_leaves_nothing_behind_however_it_ends(ending: str | signal.Signals) -> None:
    # One database is made and dropped by the same code whatever the ending: on PostgreSQL two endings suffice
    # to show it, which keeps the test to seconds (creating and dropping a database costs a checkpoint).
    child, made = start(ending if isinstance(ending, str) else "wait", database=ending in ("raise", signal.SIGTERM))
    group = int(made["group"])
    try:
        if isinstance(ending, signal.Signals):
            child.send_signal(ending)
        _out, err = child.communicate(timeout=120)

        if isinstance(ending, signal.Signals):  # Python ends on Ctrl-C by the signal itself, as a shell expects
            assert child.returncode in (128 + ending, -ending), err
        else:
            assert child.returncode == {"return": 0, "raise": 1}[ending], err
        assert not Path(str(made["directory"])).exists()
        assert wait_gone(group) == []
        if made["database"]:
            assert make_url(str(made["database"])).database not in databases()
    finally:  # a failed run leaves nothing either
        child.kill()
        for pid in live(group):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(str(made["directory"]), ignore_errors=True)


def test_after_sigkill_the_leader_is_stopped_and_the_next_run_drops_the_database() -> None:
    child, made = start("wait")
    group = int(made["group"])
    try:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while group in live(group) and time.monotonic() < deadline:  # told by the kernel that its parent died
            time.sleep(0.05)
        assert group not in live(group)
        if not made["database"]:
            return
        name = make_url(str(made["database"])).database
        assert name in databases()  # nothing could run in a SIGKILLed process

        rerun, again = start("return")
        rerun.communicate(timeout=120)

        assert rerun.returncode == 0
        assert name not in databases()
        assert make_url(str(again["database"])).database not in databases()
    finally:
        child.kill()
        for pid in live(group):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(str(made["directory"]), ignore_errors=True)  # nothing could remove it


def test_the_bare_loop_signs_the_device_certificate_the_ca_signs(instance: Instance) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    device = Eui64.parse("00-DB-12-34-56-78-90-A4")
    der = device_csr(key, device, "keyAgreement").public_bytes(Encoding.DER)
    by_ca = instance.ca.issue(CertificateRequest("device", key.public_key(), key_usage="keyAgreement",
                                                 device_id=device))
    loop = DeviceLoop([der], instance.hierarchy.certificate("issuing_dca"), instance.keystore.signer("issuing-dca"),
                      instance.policies.environment.device_policy.dotted_string)

    bare = loop.certificate(0)

    assert [(e.oid, e.critical, e.value) for e in bare.extensions] == \
        [(e.oid, e.critical, e.value) for e in by_ca.extensions]
    assert (bare.issuer, bare.subject, bare.not_valid_after_utc, bare.signature_algorithm_oid) == \
        (by_ca.issuer, by_ca.subject, by_ca.not_valid_after_utc, by_ca.signature_algorithm_oid)
    assert len(bare.tbs_certificate_bytes) == len(by_ca.tbs_certificate_bytes)  # the same work for the signer
    assert gbcs_subject_key_identifier(key.public_key()).digest == subject_key_identifier(key.public_key())
    assert loop.build_and_sign() == loop.parse_verify_build_and_sign() == 1
