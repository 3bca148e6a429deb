"""Recovery drills on the web (issue 14 item 6): the JSON API ``/api/v1/drills`` (with its OpenAPI document)
and the portal pages ``/portal/drills`` where the SMKI PMA, a DCC operator or the Code Administrator starts a
drill, watches it live and reads its report.

Both only authenticate (the RA's one auth stack: API token or IKI certificate for the API, the portal session
for pages), check the drill role (:mod:`smki.drills.access`) and hand over to :class:`smki.drills.runner.Drills`.
A drill started here runs in a thread of the web worker that received the request; if that worker dies, the
run's lease runs out and ``smki drill resume RUN`` (or the Resume button) continues it from its first unfinished
step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import HTTPException

from smki.core.bounded import DATABASE_INTEGER_MAX
from smki.core.errors import SmkiError
from smki.core.policyfiles.recovery import load_scenario, scenario_names
from smki.core.problem import error_response, http_error_response, status_for
from smki.drills import report as reporting
from smki.drills.access import may_run_drills, require_drill_role
from smki.drills.record import artefacts_dir, record
from smki.drills.report import ReportFiles
from smki.drills.runner import DrillError, Drills
from smki.instance import Instance
from smki.ra.identity import Principal
from smki.ra.web import caller
from smki.ra.web.bodies import checked, json_object
from smki.ra.web.portal import current, signed_in

API_PREFIX = "/api/v1/drills"
api = Blueprint("drills_api", __name__, url_prefix=API_PREFIX)
portal = Blueprint("drills_portal", __name__, url_prefix="/portal/drills", template_folder="templates")

# The largest estate a drill started from the web may build: bigger drills are benchmarks, run with `smki drill`.
WEB_DEVICE_LIMIT = 100_000
REPORT_FORMATS = {"html": ("html", "text/html"), "pdf": ("pdf", "application/pdf"),
                  "json": ("json", "application/json"), "evidence": ("evidence_zip", "application/zip")}
NOT_RENDERED = "DR:REP09"


def register(app: Flask) -> None:
    app.register_blueprint(api)
    app.register_blueprint(portal)

    @app.context_processor
    def drills_link() -> dict[str, Any]:
        """The portal's navigation shows "Recovery drills" to those who may use them (the RA's templates know
        nothing of drills: they print the link only when it is given)."""
        try:
            principal = current() if request.path.startswith("/portal") else None
        except SmkiError:
            principal = None
        if principal is not None and may_run_drills(principal):
            return {"drills_link": url_for("drills_portal.runs")}
        return {"drills_link": None}


def drills() -> Drills:
    app: Flask = current_app
    if "smki_drills" not in app.extensions:
        instance: Instance = app.config["SMKI_INSTANCE"]
        app.extensions["smki_drills"] = Drills(instance)
    return app.extensions["smki_drills"]


def create_body() -> dict[str, Any]:
    instance: Instance = current_app.config["SMKI_INSTANCE"]
    return {"type": "object", "additionalProperties": False, "required": ["scenario"], "properties": {
        "scenario": {"enum": scenario_names(instance.settings.policies_dir),
                     "description": "a scenario file of policies/recovery/"},
        "devices": {"type": "integer", "minimum": 1, "maximum": WEB_DEVICE_LIMIT,
                    "description": "estate size (default: the scenario's)"},
        "seed": {"type": "integer", "minimum": 0, "maximum": DATABASE_INTEGER_MAX,
                 "description": "makes the drill repeatable (default: random)"},
        "types": {"type": "string", "maxLength": 200, "description": "device mix, e.g. ESME=2,GSME=1,CHF=1"},
        "faults": {"type": "string", "maxLength": 200, "description": "injected faults, e.g. offline=1,busy=1"}}}


def start(principal: Principal, data: dict[str, Any]) -> int:
    runner = drills()
    run_id = runner.create(data["scenario"], devices=data.get("devices"), seed=data.get("seed"),
                           types=data.get("types") or None, faults_text=data.get("faults"),
                           started_by=principal.label)
    runner.start_in_background(run_id)
    return run_id


def resume(run_id: int) -> None:
    runner = drills()
    status = runner.progress(run_id).status
    if status == "completed":
        raise DrillError("DR:RUN3", f"drill {run_id} is completed; there is nothing to resume")
    runner.start_in_background(run_id)


def run_json(run_id: int) -> dict[str, Any]:
    runner = drills()
    progress = runner.progress(run_id).as_dict()
    return {**progress, "steps": runner.steps(run_id), "href": f"{API_PREFIX}/runs/{run_id}",
            "portal": url_for("drills_portal.run", run_id=run_id)}


def report_files(run_id: int, *, render: bool) -> ReportFiles:
    """The run's report files; with ``render``, produced now from the run's record and lodged in the Repository
    for the PMA (as the next version when the drill moved on since)."""
    host: Instance = current_app.config["SMKI_INSTANCE"]
    artefacts = artefacts_dir(host, run_id)
    out = Path(artefacts).parent / "report"
    files = reporting.report_files(out, run_id)
    if render:
        files = reporting.render(record(host, run_id), artefacts, out)
        reporting.lodge(host, run_id, files, replace=True)
    elif not all(path.exists() for path in (files.html, files.pdf, files.json, files.evidence_zip)):
        raise DrillError(NOT_RENDERED, f"drill {run_id}'s report has not been produced yet: POST "
                        f"{API_PREFIX}/runs/{run_id}/report (or `smki drill report {run_id}`) once it has ended.",
                        field="run")
    return files


def _run_id(value: int) -> int:
    if not 1 <= value <= DATABASE_INTEGER_MAX:
        raise DrillError("DR:RUN1", f"there is no drill run {value}", field="run")
    return value


# --- JSON API ---------------------------------------------------------------------------------------------

@api.errorhandler(SmkiError)
def api_error(error: SmkiError) -> Response:
    return error_response(error)


@api.errorhandler(HTTPException)
def api_http_error(error: HTTPException) -> Response:
    return http_error_response(error)


@api.get("/scenarios")
def api_scenarios():
    require_drill_role(caller())
    instance: Instance = current_app.config["SMKI_INSTANCE"]
    out = []
    for name in scenario_names(instance.settings.policies_dir):
        scenario = load_scenario(instance.settings.policies_dir, name)
        out.append({"id": scenario.id, "title": scenario.title, "steps": len(scenario.steps)})
    return {"scenarios": out}


@api.get("/runs")
def api_runs():
    require_drill_role(caller())
    return {"runs": drills().list()}


@api.post("/runs")
def api_start():
    principal = require_drill_role(caller())
    run_id = start(principal, checked(create_body(), json_object()))
    return run_json(run_id), 202, {"Location": f"{API_PREFIX}/runs/{run_id}"}


@api.get("/runs/<int:run_id>")
def api_run(run_id: int):
    require_drill_role(caller())
    return run_json(_run_id(run_id))


@api.post("/runs/<int:run_id>/pause")
def api_pause(run_id: int):
    require_drill_role(caller())
    checked({"type": "object", "additionalProperties": False, "properties": {}}, json_object())
    return {"status": drills().pause(_run_id(run_id))}


@api.post("/runs/<int:run_id>/resume")
def api_resume(run_id: int):
    require_drill_role(caller())
    checked({"type": "object", "additionalProperties": False, "properties": {}}, json_object())
    resume(_run_id(run_id))
    return run_json(run_id), 202


@api.get("/runs/<int:run_id>/record")
def api_record(run_id: int):
    require_drill_role(caller())
    return record(current_app.config["SMKI_INSTANCE"], _run_id(run_id))


@api.post("/runs/<int:run_id>/report")
def api_render_report(run_id: int):
    require_drill_role(caller())
    checked({"type": "object", "additionalProperties": False, "properties": {}}, json_object())
    report_files(_run_id(run_id), render=True)
    return {fmt: f"{API_PREFIX}/runs/{run_id}/report/{fmt}" for fmt in REPORT_FORMATS}, 201


@api.get("/runs/<int:run_id>/report/<fmt>")
def api_report(run_id: int, fmt: str):
    require_drill_role(caller())
    return _send_report(_run_id(run_id), fmt)


def _send_report(run_id: int, fmt: str) -> Response:
    if fmt not in REPORT_FORMATS:
        raise DrillError("DR:REP08", f"a drill report comes as {', '.join(REPORT_FORMATS)}, not {fmt!r}",
                         field="format")
    attribute, mimetype = REPORT_FORMATS[fmt]
    path = Path(getattr(report_files(run_id, render=False), attribute))
    return send_file(path, mimetype=mimetype, as_attachment=fmt in ("pdf", "evidence"), download_name=path.name)


@api.get("/openapi.json")
def openapi():
    from smki.web.drills_openapi import document
    return document(create_body())


# --- portal -----------------------------------------------------------------------------------------------

@portal.errorhandler(SmkiError)
def portal_error(error: SmkiError):
    return render_template("ra/error.html", error=error, principal=None), status_for(error)


def _portal_principal() -> Principal:
    principal = signed_in()
    if not may_run_drills(principal):
        abort(Response(render_template("ra/error.html", principal=principal, error=SmkiError(
            "AZ:DRL01", "only the SMKI PMA, a DCC operator or the Code Administrator may start or read recovery "
            "drills.")), status=403))
    return principal


@portal.get("/")
def runs():
    principal = _portal_principal()
    instance: Instance = current_app.config["SMKI_INSTANCE"]
    scenarios = [load_scenario(instance.settings.policies_dir, name)
                 for name in scenario_names(instance.settings.policies_dir)]
    return render_template("drills/runs.html", principal=principal, runs=drills().list(), scenarios=scenarios)


@portal.post("/")
def start_from_portal():
    principal = _portal_principal()
    form = request.form
    data: dict[str, Any] = {"scenario": form.get("scenario", "")}
    for name in ("devices", "seed"):
        text = form.get(name, "").strip()
        if text:
            data[name] = int(text) if text.isdigit() else text
    for name in ("types", "faults"):
        if form.get(name, "").strip():
            data[name] = form[name].strip()
    run_id = start(principal, checked(create_body(), data))
    return redirect(url_for("drills_portal.run", run_id=run_id))


@portal.get("/<int:run_id>")
def run(run_id: int):
    principal = _portal_principal()
    return render_template("drills/run.html", principal=principal, run=run_json(_run_id(run_id)),
                           progress_url=url_for("drills_portal.progress", run_id=run_id))


@portal.get("/<int:run_id>/progress")
def progress(run_id: int):
    """The run's progress as JSON, for the page's live view (the portal session, not an API token)."""
    _portal_principal()
    return run_json(_run_id(run_id))


@portal.post("/<int:run_id>/<action>")
def act(run_id: int, action: str):
    _portal_principal()
    _run_id(run_id)
    if action == "pause":
        drills().pause(run_id)
    elif action == "resume":
        resume(run_id)
    elif action == "report":
        report_files(run_id, render=True)
    else:
        abort(404)
    return redirect(url_for("drills_portal.run", run_id=run_id))


@portal.get("/<int:run_id>/report/<fmt>")
def report(run_id: int, fmt: str):
    _portal_principal()
    return _send_report(_run_id(run_id), fmt)
