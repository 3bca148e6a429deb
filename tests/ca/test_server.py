"""``smki serve``'s companion processes: started beside the workers, stopped with them, never threads of
the forking master."""

from __future__ import annotations

import os
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
