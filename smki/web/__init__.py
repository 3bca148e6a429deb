"""The web front end: Flask blueprints that parse and authenticate, then hand over to the RA."""

from __future__ import annotations

import os

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from smki.core.bounded import DatabaseIntegerConverter, PrintableTextConverter
from smki.core.errors import SmkiError
from smki.core.problem import error_response, http_error_response, unexpected_response
from smki.instance import Instance


def create_app(instance: Instance | None = None) -> Flask:
    app = Flask(__name__)
    # every <int:...> within the database's range, every <name> free of control characters (smki.core.bounded)
    app.url_map.converters.update(int=DatabaseIntegerConverter, default=PrintableTextConverter,
                                  string=PrintableTextConverter)
    app.config["SMKI_INSTANCE"] = instance or Instance.from_env()
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    # The portals' session cookie and CSRF tokens: the instance's one key, made before the workers start.
    app.secret_key = app.config["SMKI_INSTANCE"].session_key

    @app.get("/health")
    def health() -> tuple[dict[str, str], dict[str, str]]:
        # Which worker answered: how an operator (or a test) sees requests spread over the workers.
        return {"status": "ok"}, {"X-SMKI-Worker": str(os.getpid())}

    from smki.web.landing import landing
    app.add_url_rule("/", "landing", landing)  # the portals and API documents, for a person or a script

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
    from smki.web.csrf import protect_forms
    protect_forms(app)  # every portal form, once every blueprint is known
    return app
