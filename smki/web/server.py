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


def run(host: str, port: int, workers: int = 2, **options: Any) -> None:
    _Server({"bind": f"{host}:{port}", "workers": workers, "threads": 4, "accesslog": "-", **options}).run()
