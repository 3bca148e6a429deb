"""Serves the Flask application with gunicorn, a production WSGI server (TLS-capable)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from smki.web import create_app

        return create_app()


def _fresh_pools(_server: object, _worker: object) -> None:
    """gunicorn ``post_fork``: a worker must not share the master's pooled database connections."""
    from smki.core.db import _engines

    for engine in list(_engines.values()):
        engine.dispose(close=False)


class Companions:
    """Background services that run beside the web workers (the CRL publisher, the batch worker), each
    in a process of its own, started once gunicorn is ready and stopped when it exits.

    They are separate processes, not threads of the master: a thread in a process that forks can hold a
    lock (SQLAlchemy's, logging's) at the moment of fork and leave the worker deadlocked.
    """

    def __init__(self, commands: Sequence[Sequence[str]]) -> None:
        self.commands = [list(c) for c in commands]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, _server: object) -> None:
        for command in self.commands:
            log.info("starting %s", " ".join(command))
            self.processes.append(subprocess.Popen(command))

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


def run(host: str, port: int, workers: int = 2, *, companions: Sequence[Sequence[str]] = (),
        **options: Any) -> None:
    # Configure the ORM mappers before forking, so no worker inherits a half-configured registry.
    from sqlalchemy.orm import configure_mappers

    from smki.schema import import_all_models

    import_all_models()
    configure_mappers()
    helpers = Companions(companions)
    _Server({"bind": f"{host}:{port}", "workers": workers, "threads": 4, "accesslog": "-",
             "post_fork": _fresh_pools, "when_ready": helpers.start, "on_exit": helpers.stop,
             **options}).run()
