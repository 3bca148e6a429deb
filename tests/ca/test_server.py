"""``smki serve``'s companion processes: started beside the workers, stopped with them, never threads of
the forking master."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from smki.web.server import Companions, smki_command


def test_companions_start_and_stop_with_the_server():
    companions = Companions([[sys.executable, "-c", "import time; time.sleep(60)"]])

    companions.start(None)
    [process] = companions.processes
    assert process.poll() is None  # running beside the server

    companions.stop(None)
    assert process.poll() is not None  # gone when the server exits


PARENT = """
import sys
from smki.web.server import Companions
companions = Companions([[sys.executable, "-c", "import time; time.sleep(120)"]])
companions.start(None)
print(companions.processes[0].pid, flush=True)
sys.stdin.read()
"""


def test_a_companion_dies_with_its_parent_even_when_the_parent_is_killed_outright():
    from tests.serve.served import alive, command_line

    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    companion = None
    try:
        assert parent.stdout is not None
        companion = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        # Until the launcher has asked for the signal and exec'd the companion itself. Mid-exec the kernel
        # shows an empty command line, so wait for the companion's own words rather than the launcher's absence.
        while time.monotonic() < deadline and "time.sleep(120)" not in command_line(companion):
            time.sleep(0.1)
        assert alive(companion) and command_line(companion).startswith(sys.executable)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and alive(companion):
            time.sleep(0.1)
        assert not alive(companion)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if companion is not None and alive(companion) and "time.sleep(120)" in command_line(companion):
            os.kill(companion, signal.SIGKILL)


def test_the_publisher_companion_publishes_and_stops_cleanly_on_sigterm(instance):
    env = {**os.environ, "SMKI_INSTANCE": str(instance.settings.instance_dir),
           "SMKI_DATABASE_URL": instance.settings.database_url}
    process = subprocess.Popen(smki_command("repository", "publisher"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert "publisher running" in process.stdout.readline()
        from repository.models import PublishedRevocationList

        deadline = time.monotonic() + 20
        published = 0
        while time.monotonic() < deadline and published < 2:
            with instance.database.session() as session:
                published = session.query(PublishedRevocationList).count()
            time.sleep(0.2)
        assert published == 2  # the first CRL and ARL, at start-up
        from repository.store import CertificateRepository

        repository = CertificateRepository(instance.database)
        for name in ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "recovery"):  # lodged at start
            assert repository.get(f"{instance.hierarchy.certificate(name).serial_number:032X}") is not None
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "Traceback" not in err
