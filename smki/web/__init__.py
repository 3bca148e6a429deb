"""The web front end: Flask blueprints that parse and authenticate, then hand over to the RA."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from smki.core.errors import SmkiError
from smki.core.problem import error_response, http_error_response, unexpected_response
from smki.instance import Instance


def create_app(instance: Instance | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SMKI_INSTANCE"] = instance or Instance.from_env()
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024

    @app.get("/health")
    def health():  # type: ignore[no-untyped-def]
        return {"status": "ok"}

    @app.errorhandler(SmkiError)
    def smki_error(error: SmkiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return http_error_response(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error")  # the trace goes to the log, never to the caller
        return unexpected_response()

    from smki.web.blueprints import register_blueprints
    register_blueprints(app)
    return app
