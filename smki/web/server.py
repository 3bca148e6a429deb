"""Serves the Flask application with gunicorn, a production WSGI server (TLS-capable)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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
    from smki.db import _engines

    for engine in list(_engines.values()):
        engine.dispose(close=False)


def run(host: str, port: int, workers: int = 2, **options: Any) -> None:
    # Configure the ORM mappers before forking: otherwise a thread of the master (the publication
    # scheduler) can hold SQLAlchemy's configure lock at the moment of fork, and the worker deadlocks on
    # its first query.
    from sqlalchemy.orm import configure_mappers

    from smki.db import import_all_models

    import_all_models()
    configure_mappers()
    _Server({"bind": f"{host}:{port}", "workers": workers, "threads": 4, "accesslog": "-",
             "post_fork": _fresh_pools, **options}).run()
