"""The one mapping from an error to what a JSON caller sees: an RFC 9457 problem document with the code.

Every JSON front end (CA, RA, Repository, Device CSR) renders refusals here, so one code always gets the
same HTTP status, and an unexpected failure is one fatal code with no trace.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from smki.core.errors import SmkiError

PROBLEM_JSON = "application/problem+json"

STATUS_BY_FAMILY = {"FM": 400, "CR": 422, "IN": 403, "UD": 404, "WF": 409, "AU": 401, "AZ": 403, "CA": 500}
# Codes that name something absent rather than a conflict in the workflow.
NOT_FOUND_CODES = frozenset({"WF:FRM07", "WF:CRT01", "WF:REG01", "FM:FRM02"})
# The one code for a failure nobody anticipated; the trace goes to the log only.
UNEXPECTED_CODE = "CA:E500"
UNEXPECTED_DETAIL = ("the service failed unexpectedly; nothing was issued or changed. Retry, and report the "
                     "time of the failure if it persists.")


def status_for(error: SmkiError) -> int:
    """The HTTP status of a refusal: an explicit ``status`` on the error wins, then the code, then its family."""
    explicit = getattr(error, "status", None)
    if isinstance(explicit, int):
        return explicit
    if error.code in NOT_FOUND_CODES:
        return 404
    return STATUS_BY_FAMILY.get(error.family, 400)


def problem_body(error: SmkiError) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": error.code, "status": status_for(error),
                            "code": error.code, "detail": error.message}
    if error.field:
        body["field"] = error.field
    if error.details:
        body["errors"] = [{"code": f.code, "field": f.field, "detail": f.message} for f in error.details]
    return body


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    """A problem document with the SEC-style code (``extra`` members with a value of None are left out)."""
    body = {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail}
    body.update({key: value for key, value in extra.items() if value is not None})
    return _respond(body, status)


def error_response(error: SmkiError) -> Response:
    response = _respond(problem_body(error), status_for(error))
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="smki"'
    return response


def http_error_response(error: HTTPException) -> Response:
    code = error.code or 500
    return problem(code, f"HT:{code}", error.description or error.name)


def unexpected_response() -> Response:
    return problem(500, UNEXPECTED_CODE, UNEXPECTED_DETAIL)


def _respond(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response
