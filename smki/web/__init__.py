"""The web front end: Flask blueprints that parse and authenticate, then hand over to the RA."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from smki.errors import SmkiError
from smki.instance import Instance

PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, detail: str, **extra: Any):  # type: ignore[no-untyped-def]
    """An RFC 9457 problem document carrying the SEC-style code."""
    body = {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def create_app(instance: Instance | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SMKI_INSTANCE"] = instance or Instance.from_env()
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024

    @app.get("/health")
    def health():  # type: ignore[no-untyped-def]
        return {"status": "ok"}

    @app.errorhandler(SmkiError)
    def smki_error(error: SmkiError):  # type: ignore[no-untyped-def]
        status = {"FM": 400, "CR": 422, "IN": 403, "UD": 404, "WF": 409, "AU": 401, "AZ": 403}.get(
            error.family, 500 if error.family == "CA" else 400)
        return problem(status, error.code, error.message, field=error.field)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        return problem(error.code or 500, f"HT:{error.code}", error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("unhandled error")  # the trace goes to the log, never to the caller
        return problem(500, "CA:E500", "the service failed unexpectedly; nothing was issued or changed. "
                       "Retry, and report the time of the failure if it persists.")

    from smki.web.blueprints import register_blueprints
    register_blueprints(app)
    return app
