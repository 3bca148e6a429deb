"""SREPT on the web: the JSON API (``/api/v1/srept``), the progress pages (``/portal/srept``), and the hook that
captures a Party's requests and answers while a run is open (recorded by :mod:`smki.srept.recording`).

The hook costs one comparison per request while no run is open (and a read of the open runs once a second).
While one is, it captures only requests that could be a Party's (they carry a credential, a run key, or sign
in): the request body as it is read (a tee on the input stream, up to the recording limit; a form is kept as its
fields, with secrets blanked), and the answer as it is sent (a streamed answer, such as a 50,000-certificate
batch result, through a wrapper that keeps its first bytes). Attribution, matching and writing happen after the
answer, in the recorder's thread.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, render_template, request, session
from sqlalchemy.exc import SQLAlchemyError

from smki.core.bounded import parse_query_int
from smki.core.errors import ConfigurationError, SmkiError
from smki.core.problem import error_response
from smki.instance import Instance
from smki.ra.forms import schema_findings
from smki.ra.web import bearer_token, caller, client_certificate
from smki.srept.context import recorder
from smki.srept.models import SreptInteraction, SreptRun
from smki.srept.recording import RUN_KEY_HEADER, SCENARIO_HEADER, Captured
from smki.srept.runs import Progress, SreptService
from smki.srept.schemas import body_schema

log = logging.getLogger(__name__)
api = Blueprint("srept_api", __name__, url_prefix="/api/v1/srept")
pages = Blueprint("srept_portal", __name__, url_prefix="/portal/srept",
                  template_folder=str(__import__("smki.srept", fromlist=["TEMPLATES"]).TEMPLATES))

BODY_INVALID = "FM:SRP07"
NOT_RECORDED = ("/api/v1/srept", "/portal/srept", "/health", "/static")
SECRET_FIELDS = frozenset({"token", "password", "csrf_token"})
SECRET_QUERY = frozenset({"apikey"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
REPOSITORY_COOKIE = "smki_repository_session"


def register(app: Flask) -> None:
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.before_request(_begin_capture)
    app.after_request(_end_capture)


def _instance() -> Instance:
    return current_app.config["SMKI_INSTANCE"]


def service() -> SreptService:
    app: Flask = current_app
    if "smki_srept" not in app.extensions:
        app.extensions["smki_srept"] = SreptService(_instance())
    return app.extensions["smki_srept"]


@api.errorhandler(SmkiError)
def _refused(error: SmkiError) -> Response:
    return error_response(error)


def _body(name: str) -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise SmkiError(BODY_INVALID, "send a JSON object as the body.")
    findings = schema_findings(body_schema(name), payload, BODY_INVALID)
    if findings:
        raise SmkiError(BODY_INVALID, f"{len(findings)} field(s) of the body are invalid.", details=findings)
    return payload


# --- JSON API ------------------------------------------------------------------------------------------------

def run_json(run: SreptRun) -> dict[str, Any]:
    return {"id": run.id, "organisation_id": run.organisation_id, "status": run.status,
            "opened_by": run.opened_by, "opened_at": run.opened_at.isoformat(),
            "closed_at": run.closed_at.isoformat() if run.closed_at else None,
            "catalogue_sha256": run.catalogue_sha256, "scenarios": len(run.scenarios),
            "pass_recorded_at": run.pass_recorded_at.isoformat() if run.pass_recorded_at else None,
            "pack_sha256": run.pack_sha256,
            "links": {"progress": f"/api/v1/srept/runs/{run.id}", "page": f"/portal/srept/runs/{run.id}",
                      "pack": f"/api/v1/srept/runs/{run.id}/pack"}}


def progress_json(progress: Progress) -> dict[str, Any]:
    run = progress.run
    return {"run": run_json(run), "party": progress.party, "complete": progress.complete,
            "counts": {state: progress.count(state) for state in ("passed", "failed", "not_run")},
            "scenarios": [{"id": s.id, "interface": s.interface, "title": s.title, "kind": s.kind,
                           "confidence": s.confidence, "state": s.state,
                           "passing": [f"/api/v1/srept/runs/{run.id}/interactions/{i}" for i in s.passing],
                           "failing": [f"/api/v1/srept/runs/{run.id}/interactions/{i}" for i in s.failing]}
                          for s in progress.scenarios]}


def interaction_json(row: SreptInteraction, *, bodies: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "at": row.at.isoformat(), "method": row.method, "path": row.path, "query": row.query,
        "credential": row.credential_kind, "holder": row.credential_holder,
        "declared_scenario": row.declared_scenario, "http_status": row.http_status,
        "service_status": row.service_status, "error_code": row.error_code,
        "audit_reference": row.audit_reference, "elapsed_ms": row.elapsed_ms, "note": row.note}
    if bodies:
        for side in ("request", "response"):
            data: bytes = getattr(row, f"{side}_body")
            out[side] = {"content_type": getattr(row, f"{side}_type"), "truncated": getattr(row, f"{side}_truncated"),
                         "base64": base64.b64encode(data).decode()}
    return out


@api.get("/openapi.json")
def openapi() -> dict[str, Any]:
    from smki.srept.schemas.openapi import openapi_document

    return openapi_document()


@api.post("/runs")
def open_run() -> tuple[Response, int]:
    body = _body("open_run")
    opened = service().open(caller(), body["organisation_id"])
    return jsonify({**run_json(opened.run), "run_key": opened.run_key,
                    "recording_from": opened.recording_from.isoformat(),
                    "run_key_header": RUN_KEY_HEADER, "scenario_header": SCENARIO_HEADER}), 201


@api.get("/runs")
def list_runs() -> dict[str, Any]:
    party = parse_query_int(request.args.get("organisation_id"), field="organisation_id", code=BODY_INVALID,
                            minimum=1)
    if party is None:
        raise SmkiError(BODY_INVALID, "give organisation_id, the Party's RA organisation number.",
                        field="organisation_id")
    return {"runs": [run_json(run) for run in service().runs(caller(), party)]}


@api.get("/runs/<int:run_id>")
def run_progress(run_id: int) -> dict[str, Any]:
    return progress_json(service().progress(caller(), run_id))


@api.post("/runs/<int:run_id>/closure")
def close_run(run_id: int) -> dict[str, Any]:
    return run_json(service().close(caller(), run_id))


@api.get("/runs/<int:run_id>/interactions")
def list_interactions(run_id: int) -> dict[str, Any]:
    return {"interactions": [interaction_json(row) for row in service().interactions(caller(), run_id)]}


@api.get("/runs/<int:run_id>/interactions/<int:interaction_id>")
def one_interaction(run_id: int, interaction_id: int) -> dict[str, Any]:
    return interaction_json(service().interaction(caller(), run_id, interaction_id), bodies=True)


@api.post("/runs/<int:run_id>/attestations")
def attest(run_id: int) -> tuple[dict[str, Any], int]:
    body = _body("attestation")
    try:
        evidence = base64.b64decode(body.get("evidence_base64") or "", validate=True)
    except (binascii.Error, ValueError) as exc:   # ValueError: text outside ASCII cannot be base64 at all
        raise SmkiError(BODY_INVALID, f"evidence_base64 is not base64 ({exc}).", field="evidence_base64") from None
    service().attest(caller(), run_id, body["scenario"], body["note"], body.get("evidence_name"), evidence)
    return {"run": run_id, "scenario": body["scenario"]}, 201


@api.get("/runs/<int:run_id>/pack")
def evidence_pack(run_id: int) -> Response:
    from smki.srept.evidence import build_pack

    principal = caller()
    pack = build_pack(_instance(), service(), principal, run_id)
    return Response(pack.data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="srept-run-{run_id}.zip"',
        "X-SREPT-Manifest-SHA256": pack.manifest_sha256})


@api.post("/runs/<int:run_id>/pass")
def record_pass(run_id: int) -> dict[str, Any]:
    from smki.srept.evidence import build_pack

    body = _body("record_pass")
    principal = caller()
    digest = body.get("pack_sha256") or build_pack(_instance(), service(), principal, run_id).manifest_sha256
    return run_json(service().record_pass(principal, run_id, digest))


# --- portal pages --------------------------------------------------------------------------------------------

def _signed_in() -> Any:
    from smki.ra.web.portal import signed_in

    return signed_in()


@pages.get("/runs/<int:run_id>")
def progress_page(run_id: int) -> str:
    principal = _signed_in()
    return render_template("srept/progress.html", principal=principal, progress=service().progress(principal, run_id))


@pages.get("/runs/<int:run_id>/interactions/<int:interaction_id>")
def interaction_page(run_id: int, interaction_id: int) -> str:
    principal = _signed_in()
    row = service().interaction(principal, run_id, interaction_id)
    return render_template("srept/interaction.html", principal=principal, run_id=run_id, row=row,
                           request_text=_shown(row.request_body), response_text=_shown(row.response_body))


def _shown(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(data)} bytes of binary data, SHA-256 {hashlib.sha256(data).hexdigest()})"


# --- capturing -----------------------------------------------------------------------------------------------

class _Tee(io.RawIOBase):
    """The request's input stream, keeping a copy of its first ``limit`` bytes as the handler reads it."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream, self.limit = stream, limit
        self.kept = bytearray()
        self.truncated = False

    def readable(self) -> bool:
        return True

    def _keep(self, data: bytes) -> bytes:
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        if len(data) > max(room, 0):
            self.truncated = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._keep(self.stream.read() if size is None or size < 0 else self.stream.read(size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        return self._keep(self.stream.readline() if size is None or size < 0 else self.stream.readline(size))


class _KeptAnswer:
    """A streamed answer, passed through, keeping its first bytes; hands them over once it has all been sent (or
    when the server closes it early: a client that went away)."""

    def __init__(self, chunks: Iterable[Any], limit: int, done: Callable[[bytes, bool], None]) -> None:
        self.chunks, self.limit, self.done = chunks, limit, done
        self.kept = bytearray()
        self.truncated = False
        self.handed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            if len(chunk) > max(room, 0):
                self.truncated = True
            yield chunk
        self._hand_over()

    def _hand_over(self) -> None:
        if not self.handed:
            self.handed = True
            self.done(bytes(self.kept), self.truncated)

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        self._hand_over()


def _may_be_a_partys() -> bool:
    """Whether the request carries anything that could tie it to a Party."""
    headers, cookies = request.headers, request.cookies
    if headers.get("Authorization") or headers.get(RUN_KEY_HEADER) or headers.get("X-API-Key"):
        return True
    if request.args.get("apikey") or cookies.get(REPOSITORY_COOKIE):
        return True
    if cookies.get(current_app.config.get("SESSION_COOKIE_NAME", "session")):
        return True
    return request.path in ("/portal/login", "/repository/login") or client_certificate() is not None


def _begin_capture() -> None:
    if request.path.startswith(NOT_RECORDED):
        return
    try:
        rec = recorder(_instance())
        if not rec.any_open() or not _may_be_a_partys():
            return
    except (ConfigurationError, SQLAlchemyError):
        # no catalogue, or no srept tables yet: the request is served unrecorded (validate_policies and
        # smki init report the cause at start)
        log.warning("SREPT recording unavailable", exc_info=True)
        return
    limit = rec.settings.body_limit_bytes
    tee = None
    if not request.mimetype.startswith(FORM_TYPES):
        tee = _Tee(request.environ["wsgi.input"], limit)
        request.environ["wsgi.input"] = tee
    g.srept_capture = (time.perf_counter(), dt.datetime.now(dt.UTC), tee, limit)


def _form_record() -> bytes:
    """A form as its fields (secrets blanked) and its files (name, size, SHA-256), as JSON."""
    fields = {name: ["(withheld)" if name in SECRET_FIELDS else value for value in request.form.getlist(name)]
              for name in request.form}
    files = []
    for name, upload in request.files.items(multi=True):
        upload.stream.seek(0)
        data = upload.stream.read()
        files.append({"field": name, "filename": upload.filename, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    return json.dumps({"form": fields, "files": files}, sort_keys=True).encode()


def _end_capture(response: Response) -> Response:
    started = g.pop("srept_capture", None)
    if started is None:
        return response
    began, at, tee, limit = started
    rec = recorder(_instance())
    if tee is not None:
        request_body, request_truncated = bytes(tee.kept), tee.truncated
    else:
        request_body = _form_record()
        request_truncated = len(request_body) > limit
        request_body = request_body[:limit]
    query = {name: ("(withheld)" if name in SECRET_QUERY else value) for name, value in request.args.items()}
    holder = g.get("repository_holder")
    portal_credential = session.get("credential") if request.path.startswith("/portal") else None
    captured = Captured(
        at=at, elapsed_ms=int((time.perf_counter() - began) * 1000), method=request.method, path=request.path,
        query=query, http_status=response.status_code, request_type=request.content_type,
        request_body=request_body, request_truncated=request_truncated, response_type=response.content_type,
        run_key=request.headers.get(RUN_KEY_HEADER), declared_scenario=request.headers.get(SCENARIO_HEADER),
        bearer_token=bearer_token(), client_certificate=client_certificate(),
        portal_credential_id=portal_credential if isinstance(portal_credential, int) else None,
        api_key=request.args.get("apikey") or request.headers.get("X-API-Key"),
        repository_holder=holder.name if holder is not None and getattr(holder, "via", "") == "password" else None,
        repository_username=(request.form.get("username") or None)
        if request.path == "/repository/login" and request.method == "POST" else None)
    if response.is_streamed or response.direct_passthrough:
        def done(body: bytes, truncated: bool) -> None:
            captured.response_body, captured.response_truncated = body, truncated
            rec.record(captured)
        response.direct_passthrough = False
        response.response = _KeptAnswer(response.response, limit, done)
        return response
    body = response.get_data()
    captured.response_body, captured.response_truncated = body[:limit], len(body) > limit
    rec.record(captured)
    return response

