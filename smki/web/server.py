"""Serves the Flask application with gunicorn, a production WSGI server (TLS-capable), with its companion
processes beside it.

How it uses the machine: one web worker process per core (each runs Python under its own GIL), a few
threads in each for the time a request waits on the database, and on Linux a listening socket per worker
(``SO_REUSEPORT``), so that the kernel spreads new connections over the workers. With one shared socket,
whichever worker woke first took each connection, and eight keep-alive clients were seen all held by one
worker while the other idled.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from smki.core.errors import ConfigurationError

log = logging.getLogger(__name__)

PORT_IN_USE = "CA:SRV02"
THREADS_PER_WORKER = 4  # requests mostly wait on the database, briefly; more threads only contend for the GIL
KEEPALIVE_SECONDS = 5   # an adaptor sending request after request keeps its connection; idle ones cost no thread
# Spread connections with a socket per worker where the kernel balances them (Linux); elsewhere SO_REUSEPORT
# lets the last socket take every connection, so the workers share one.
SPREAD_BY_KERNEL = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container's cpuset limits it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from smki.web import create_app

        return create_app()


def _fresh_pools(_server: object, _worker: object) -> None:
    """gunicorn ``post_fork``: a worker must not share the master's pooled database connections."""
    from smki.core.db import forget_inherited_connections

    forget_inherited_connections()


class Companions:
    """Background services that run beside the web workers (the CRL publisher, the batch worker), each
    in a process of its own, started once gunicorn is ready and stopped when it exits.

    They are separate processes, not threads of the master: a thread in a process that forks can hold a
    lock (SQLAlchemy's, logging's) at the moment of fork and leave the worker deadlocked. Each dies with the
    master however the master ends (``kill -9`` included; see :func:`companion_command`), and each is handed
    ``keep_fds`` (the instance's serving lock), so the instance stays claimed until the last of them is gone.
    """

    def __init__(self, commands: Sequence[Sequence[str]], keep_fds: Sequence[int] = ()) -> None:
        self.commands = [list(c) for c in commands]
        self.keep_fds = tuple(keep_fds)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, _server: object) -> None:
        for command in self.commands:
            log.info("starting %s", " ".join(command))
            self.processes.append(subprocess.Popen(companion_command(command), pass_fds=self.keep_fds))

    def stop(self, _server: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def smki_command(*arguments: str) -> list[str]:
    """A command line running this same installation's ``smki``."""
    return [sys.executable, "-m", "smki.cli", *arguments]


def companion_command(command: Sequence[str]) -> list[str]:
    """``command``, run so that it receives SIGTERM when this process (its parent) dies, however it dies."""
    return [sys.executable, "-m", "smki.web.server", "companion", str(os.getpid()), *command]


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux ``PR_SET_PDEATHSIG``, kept across ``exec``), then
    make sure the parent had not died already, before the request. Elsewhere there is no such request: an
    orphaned companion keeps the instance's serving lock, so a new ``smki serve`` refuses to run beside it.

    The call goes to libc's ``prctl(2)`` through ctypes, the system call's own interface; the PyPI wrappers
    (python-prctl, pyprctl) have had no release since 2021.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1  # <linux/prctl.h>
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        sys.exit(0)


def check_free(addresses: Sequence[str]) -> None:
    """Refuse (``CA:SRV02``) an address another program listens on. With a socket per worker, gunicorn binds
    only in the workers, which would share a port held by another SO_REUSEPORT server (another instance's
    ``smki serve``) silently, and fail to boot one after another where any other program holds it."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no owner
                try:
                    probe.bind(sockaddr)
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    raise ConfigurationError(PORT_IN_USE, f"{address} is in use by another program; stop it, or "
                                             "serve on another --port.") from None


def run(host: str, port: int, workers: int | None = None, *, threads: int = THREADS_PER_WORKER,
        companions: Sequence[Sequence[str]] = (), keep_fds: Sequence[int] = (), **options: Any) -> None:
    # Configure the ORM mappers before forking, so no worker inherits a half-configured registry.
    from sqlalchemy.orm import configure_mappers

    from smki.schema import import_all_models

    import_all_models()
    configure_mappers()
    bind = options.pop("bind", f"{host}:{port}")
    addresses = [bind] if isinstance(bind, str) else list(bind)
    check_free(addresses)
    helpers = Companions(companions, keep_fds)
    _Server({"bind": addresses, "workers": workers or cores(), "threads": threads, "worker_class": "gthread",
             "keepalive": KEEPALIVE_SECONDS, "reuse_port": SPREAD_BY_KERNEL, "accesslog": "-",
             "post_fork": _fresh_pools, "when_ready": helpers.start, "on_exit": helpers.stop,
             **options}).run()


def _companion(arguments: Sequence[str]) -> None:
    """``python -m smki.web.server companion PARENT COMMAND...``: run COMMAND, dying with PARENT."""
    parent, command = int(arguments[0]), list(arguments[1:])
    die_with_parent(parent)
    os.execv(command[0], command)


if __name__ == "__main__" and sys.argv[1:2] == ["companion"]:
    _companion(sys.argv[2:])
