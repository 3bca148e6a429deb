"""The RA's JSON API, ``/api/v1/ra``. Errors are ``application/problem+json`` carrying the SEC-style code;
a form with bad fields is answered with every bad field at once (``errors``)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, jsonify, render_template, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from smki.core.errors import SmkiError
from smki.core.problem import error_response, http_error_response
from smki.ra import registry
from smki.ra.forms import FormService, FormSubmission
from smki.ra.identity import require_sro
from smki.ra.models import CsrDecision, Person
from smki.ra.service import Release
from smki.ra.web import authority, caller

blueprint = Blueprint("ra_api", __name__, url_prefix="/api/v1/ra", template_folder="templates")


@blueprint.errorhandler(SmkiError)
def smki_error(error: SmkiError) -> Response:
    return error_response(error)


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    return http_error_response(error)


def body() -> dict[str, Any]:
    if not request.data:
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SmkiError("FM:API01", "the request body must be a JSON object (Content-Type: application/json).")
    return data


def csr_text() -> str:
    """The CSR from ``{"csr": "..."}`` or, for scripts, the raw request body (PEM, base64 or DER)."""
    if request.mimetype == "application/json":
        value = body().get("csr")
        if not isinstance(value, str) or not value.strip():
            raise SmkiError("FM:API02", "give the CSR as the 'csr' field (PEM or base64).", field="csr")
        return value
    return request.get_data(as_text=False).decode("latin-1")


def optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SmkiError("FM:API03", f"'{name}' must be an RA organisation number.", field=name)
    return value


def release_json(release: Release) -> dict[str, Any]:
    decision = release.decision
    return {"serial": release.serial, "profile": release.certificate.profile,
            "certificate": release.certificate.pem.decode(), "lodged": release.lodged,
            "href": f"/api/v1/ra/certificates/{release.serial}",
            "decision": {"id": decision.decision_id, "rule": decision.rule, "message": decision.message,
                         "subscriber": decision.subscriber_organisation_id,
                         "manufacturer": decision.manufacturer_organisation_id,
                         "manufacturing_flag": decision.manufacturing_flag}}


def decision_json(row: CsrDecision) -> dict[str, Any]:
    return {"id": row.id, "decided_at": row.decided_at.isoformat(), "kind": row.kind, "subject_id": row.subject_id,
            "allowed": row.allowed, "rule": row.rule, "code": row.code, "message": row.message,
            "status": row.status, "serial": row.serial, "manufacturing_flag": row.manufacturing_flag,
            "channel": row.channel}


def submission_json(submission: FormSubmission, secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"id": submission.id, "form": submission.form, "status": submission.status,
           "organisation_id": submission.organisation_id, "payload": submission.payload,
           "reason": submission.reason, "result": submission.result, "history": submission.history,
           "href": f"/api/v1/ra/submissions/{submission.id}",
           "print": f"/api/v1/ra/submissions/{submission.id}/print"}
    if secrets:
        out["credentials"] = secrets  # shown once; the RA keeps only hashes
    return out


# --- ARO: the CSR path and certificates ----------------------------------------------------------------------

@blueprint.post("/csr/organisation")
def submit_organisation_csr():  # type: ignore[no-untyped-def]
    principal = caller()
    release = authority().submit_organisation_csr(principal, csr_text(), channel="api")
    return jsonify(release_json(release)), 201


@blueprint.post("/csr/device")
def submit_device_csr():  # type: ignore[no-untyped-def]
    principal = caller()
    data = body() if request.mimetype == "application/json" else {}
    release = authority().submit_device_csr(principal, csr_text(), channel="api",
                                            subscriber_id=optional_int(data, "subscriber"),
                                            manufacturer_id=optional_int(data, "manufacturer"))
    return jsonify(release_json(release)), 201


@blueprint.get("/certificates/<serial>")
def certificate(serial: str):  # type: ignore[no-untyped-def]
    principal = caller()
    der, row = authority().certificate(principal, serial)
    if request.args.get("format") == "der":
        return Response(der, mimetype="application/pkix-cert")
    from cryptography import x509
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    if request.accept_mimetypes.best == "application/json":
        return {"serial": row.serial, "certificate": pem.decode(), "status": row.status, "kind": row.kind}
    return Response(pem, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'attachment; filename="{row.serial}.pem"'})


@blueprint.post("/certificates/<serial>/rejection")
def reject_certificate(serial: str):  # type: ignore[no-untyped-def]
    principal = caller()
    reason = body().get("reason") or "the certificate does not match the CSR"
    row = authority().reject_certificate(principal, serial, str(reason)[:500])
    return {"serial": row.serial, "status": row.status}


@blueprint.get("/parties/<int:organisation_id>/decisions")
def party_decisions(organisation_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    policy = request.args.get("policy", "organisation")
    if policy not in ("organisation", "device"):
        raise SmkiError("FM:API04", "policy is organisation or device.", field="policy")
    rows = authority().decisions(principal, organisation_id, policy)
    return {"decisions": [decision_json(r) for r in rows]}


# --- SRO: AROs of the Party ------------------------------------------------------------------------------------

@blueprint.get("/parties/<int:organisation_id>/aros")
def list_aros(organisation_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    require_sro(principal, organisation_id)
    ra = authority()
    with ra.database.session() as session:
        people = {p.id: p for p in session.execute(
            select(Person).where(Person.organisation_id == organisation_id)).scalars()}
        aros = [{"appointment_id": a.id, "person_id": a.person_id, "name": people[a.person_id].name,
                 "status": a.status, "scopes": [s for s, on in (("organisation", a.scope_organisation),
                                                                ("device", a.scope_device),
                                                                ("repository", a.scope_repository)) if on],
                 "acts_for": a.acts_for, "withdrawn_at": a.withdrawn_at.isoformat() if a.withdrawn_at else None}
                for a in registry.appointments(session, organisation_id, "aro")]
    return {"aros": aros}


@blueprint.post("/parties/<int:organisation_id>/aros")
def nominate_aro(organisation_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    payload = {**body(), "organisation_id": organisation_id}
    submission, _ = FormService(authority()).submit("aro_nomination", payload, principal)
    return jsonify(submission_json(submission)), 202


@blueprint.post("/parties/<int:organisation_id>/aros/<int:appointment_id>/withdrawal")
def withdraw_aro(organisation_id: int, appointment_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    payload = {"organisation_id": organisation_id, "appointment_id": appointment_id,
               "reason": body().get("reason", "withdrawn by the SRO")}
    submission, _ = FormService(authority()).submit("aro_withdrawal", payload, principal)
    return jsonify(submission_json(submission))


# --- RA operator -------------------------------------------------------------------------------------------------

@blueprint.get("/queue")
def queue():  # type: ignore[no-untyped-def]
    principal = caller()
    return {"submissions": [submission_json(s) for s in FormService(authority()).queue(principal)]}


@blueprint.post("/submissions/<int:submission_id>/verification")
def verify_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    checks = body().get("checks", {})
    if not isinstance(checks, dict):
        raise SmkiError("FM:API05", "checks is an object of check name -> true.", field="checks")
    return submission_json(FormService(authority()).verify(submission_id, principal, checks))


@blueprint.post("/submissions/<int:submission_id>/approval")
def approve_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    submission, secrets = FormService(authority()).approve(submission_id, principal)
    return submission_json(submission, secrets)


@blueprint.post("/submissions/<int:submission_id>/rejection")
def reject_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    reason = body().get("reason")
    return submission_json(FormService(authority()).reject(submission_id, principal,
                                                           reason if isinstance(reason, str) else None))


@blueprint.post("/parties/<int:organisation_id>/srept")
def record_srept(organisation_id: int):  # type: ignore[no-untyped-def]
    from smki.ra import audit
    from smki.ra.identity import require_operator

    principal = caller()
    require_operator(principal)
    passed = body().get("passed", True) is True
    ra = authority()
    party = audit.audited(ra.database, lambda session: registry.record_srept(
        session, actor=principal.label, organisation_id=organisation_id, passed=passed))
    return {"organisation_id": party.id, "srept_passed": party.srept_passed_at is not None}


# --- forms --------------------------------------------------------------------------------------------------------

@blueprint.get("/forms")
def list_forms():  # type: ignore[no-untyped-def]
    forms = FormService(authority()).forms.values()
    return {"forms": [{"name": f.name, "title": f.title, "submitted_by": f.submitted_by,
                       "approved_by": f.approved_by, "href": f"/api/v1/ra/forms/{f.name}"} for f in forms]}


@blueprint.get("/forms/<name>")
def form_schema(name: str):  # type: ignore[no-untyped-def]
    form = FormService(authority()).definition(name)
    return {"name": form.name, "title": form.title, "description": form.description, "source": form.source,
            "submitted_by": form.submitted_by, "approved_by": form.approved_by,
            "verification": list(form.verification), "workflow": ["submitted", "verified", "approved", "rejected",
                                                                  "withdrawn"],
            "schema": form.schema, "print": f"/api/v1/ra/forms/{form.name}/print"}


@blueprint.get("/forms/<name>/print")
def form_print(name: str):  # type: ignore[no-untyped-def]
    form = FormService(authority()).definition(name)
    return render_template("ra/form_print.html", form=form, submission=None)


@blueprint.post("/forms/<name>")
def submit_form(name: str):  # type: ignore[no-untyped-def]
    principal = caller(optional=True)
    service = FormService(authority())
    submission, secrets = service.submit(name, body(), principal)
    return jsonify(submission_json(submission, secrets)), 201


@blueprint.get("/submissions/<int:submission_id>")
def get_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    return submission_json(FormService(authority()).get(submission_id, principal))


@blueprint.get("/submissions/<int:submission_id>/print")
def print_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    service = FormService(authority())
    submission = service.get(submission_id, principal)
    return render_template("ra/form_print.html", form=service.definition(submission.form), submission=submission)


@blueprint.post("/submissions/<int:submission_id>/withdrawal")
def withdraw_submission(submission_id: int):  # type: ignore[no-untyped-def]
    principal = caller()
    return submission_json(FormService(authority()).withdraw(submission_id, principal))


@blueprint.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    from smki.ra.web.openapi import document
    return document()
