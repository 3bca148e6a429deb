"""Issue 8 item 8: ``kill -9`` of the gunicorn master left the CRL publisher and the batch worker running, and
the next ``smki serve`` ran two of each. Companions die with the master, and a second serve of the instance is
refused while any process of the first holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from smki.core.errors import ConfigurationError
from smki.instance import SERVED, Instance
from smki.web.server import PORT_IN_USE, smki_command
from tests.serve.served import START_SECONDS, alive, command_line, environment, serving

GONE_SECONDS = 30  # the companions stop on SIGTERM: the publisher at once, the batch worker after its job


def _companions(pids: set[int]) -> dict[str, int]:
    found = {}
    for pid in pids:
        line = command_line(pid)
        if "smki.cli repository publisher" in line:
            found["publisher"] = pid
        elif "smki.cli worker" in line:
            found["batch worker"] = pid
    return found


def test_killing_the_master_ends_its_companions_and_a_second_serve_is_refused_meanwhile(
        instance: Instance, tmp_path: Path) -> None:
    with serving(instance, tmp_path, "--workers", "1", "--batch-workers", "1") as served:
        deadline = time.monotonic() + START_SECONDS
        companions: dict[str, int] = {}
        while time.monotonic() < deadline and len(companions) < 2:
            companions = _companions(served.processes())
            time.sleep(0.2)
        assert set(companions) == {"publisher", "batch worker"}, served.output()[-3000:]

        # A second serve of the same instance is refused, with its code, and starts nothing.
        second = subprocess.run(smki_command("serve", "--host", "127.0.0.1", "--port", "0"), env=environment(instance),
                                capture_output=True, text=True, timeout=START_SECONDS)
        assert second.returncode == 2
        assert f"error {SERVED}:" in second.stderr and "already being served" in second.stderr
        assert "Traceback" not in second.stderr

        everything = served.processes()
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(timeout=10)
        deadline = time.monotonic() + GONE_SECONDS
        while time.monotonic() < deadline and any(alive(pid) for pid in everything):
            time.sleep(0.2)
        left = {pid: command_line(pid) for pid in everything if alive(pid)}
        assert left == {}, f"still running after the master was killed: {left}"

        # With every process of the first gone, the instance is free again.
        instance.hold().release()


def test_a_second_hold_on_an_instance_is_refused_with_a_code(instance: Instance) -> None:
    held = instance.hold()
    try:
        with pytest.raises(ConfigurationError) as refused:
            instance.hold()
        assert refused.value.code == SERVED and str(os.getpid()) in refused.value.message
    finally:
        held.release()
    instance.hold().release()  # released with its holder


def test_a_port_another_program_holds_is_refused_before_anything_starts(instance: Instance, tmp_path: Path) -> None:
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        refused = subprocess.run(smki_command("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                                 env=environment(instance), capture_output=True, text=True, timeout=START_SECONDS)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert f"error {PORT_IN_USE}:" in refused.stderr and "Traceback" not in refused.stderr
    instance.hold().release()  # and the refused serve left the instance free
