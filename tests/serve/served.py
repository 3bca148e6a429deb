"""``smki serve`` as a user starts it, in a process of its own on a loopback port, for the serving tests; and
the processes it starts, read from /proc (Linux), so that a test can see them and always clean them up."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smki.instance import Instance
from smki.web.server import smki_command

START_SECONDS = 90  # a loaded two-core machine boots the workers slowly; the loops end as soon as it answers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(instance: Instance, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMKI_")}
    env.update(SMKI_INSTANCE=str(instance.settings.instance_dir), SMKI_DATABASE_URL=instance.settings.database_url,
               SMKI_POLICIES=str(instance.settings.policies_dir), **extra)
    return env


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                children = Path(f"/proc/{parent}/task/{thread}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_of(connection: http.client.HTTPConnection) -> int:
    """Which web worker holds this connection (``/health`` says)."""
    connection.request("GET", "/health")
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    return int(response.headers["X-SMKI-Worker"])


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.seen: dict[int, str] = {}  # every process of this serve the test has seen, to clean up

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def processes(self) -> set[int]:
        found = descendants(self.process.pid)
        self.seen.update({pid: command_line(pid) for pid in found if pid not in self.seen})
        return found

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"smki serve exited:\n{self.output()[-3000:]}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    pass
                connection = self.connect()
                worker_of(connection)
                connection.close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"smki serve did not answer within {START_SECONDS} s:\n{self.output()[-3000:]}")


@contextmanager
def serving(instance: Instance, tmp_path: Path, *options: str, **env: str) -> Iterator[Served]:
    """``smki serve`` on a free loopback port; every process it started is killed afterwards, whatever happened."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([*smki_command("serve", "--host", "127.0.0.1", "--port", str(port), *options)],
                                   env=environment(instance, **env), stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    served = Served(process, port, log)
    try:
        served.wait_until_up()
        served.processes()
        yield served
    finally:
        served.processes()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for pid, seen_as in served.seen.items():
            if alive(pid) and command_line(pid) == seen_as:  # still the process this test started
                os.kill(pid, signal.SIGKILL)
