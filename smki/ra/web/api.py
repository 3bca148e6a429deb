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
from smki.ra.forms import FORM_INVALID, FormService, FormSubmission
from smki.ra.identity import require_sro
from smki.ra.models import CsrDecision, Person
from smki.ra.service import Release
from smki.ra.web import authority, caller
from smki.ra.web.bodies import body, checked, form_body, json_object

blueprint = Blueprint("ra_api", __name__, url_prefix="/api/v1/ra", template_folder="templates")


@blueprint.errorhandler(SmkiError)
def smki_error(error: SmkiError) -> Response:
    return error_response(error)


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    return http_error_response(error)


def csr_submission(kind: str) -> tuple[str, dict[str, Any]]:
    """The CSR and the other fields, from a JSON body (``{"csr": "..."}``, checked against the route's
    schema) or, for scripts, the raw request body (PEM, base64 or DER) with no other fields."""
    if request.is_json:
        data = body(f"{kind}_csr")
        return data["csr"], data
    return request.get_data(as_text=False).decode("latin-1"), {}


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
def submit_organisation_csr():
    principal = caller()
    csr, _ = csr_submission("organisation")
    release = authority().submit_organisation_csr(principal, csr, channel="api")
    return jsonify(release_json(release)), 201


@blueprint.post("/csr/device")
def submit_device_csr():
    principal = caller()
    csr, data = csr_submission("device")
    release = authority().submit_device_csr(principal, csr, channel="api", subscriber_id=data.get("subscriber"),
                                            manufacturer_id=data.get("manufacturer"))
    return jsonify(release_json(release)), 201


@blueprint.get("/certificates/<serial>")
def certificate(serial: str):
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
def reject_certificate(serial: str):
    principal = caller()
    reason = body("certificate_rejection").get("reason", "the certificate does not match the CSR")
    row = authority().reject_certificate(principal, serial, reason)
    return {"serial": row.serial, "status": row.status}


@blueprint.get("/parties/<int:organisation_id>/decisions")
def party_decisions(organisation_id: int):
    principal = caller()
    policy = request.args.get("policy", "organisation")
    if policy not in ("organisation", "device"):
        raise SmkiError("FM:API04", "policy is organisation or device.", field="policy")
    rows = authority().decisions(principal, organisation_id, policy)
    return {"decisions": [decision_json(r) for r in rows]}


# --- SRO: AROs of the Party ------------------------------------------------------------------------------------

@blueprint.get("/parties/<int:organisation_id>/aros")
def list_aros(organisation_id: int):
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
def nominate_aro(organisation_id: int):
    principal = caller()
    service = FormService(authority())
    nomination = checked(form_body(service.definition("aro_nomination"), ("organisation_id",)), json_object(),
                         FORM_INVALID)
    submission, _ = service.submit("aro_nomination", {**nomination, "organisation_id": organisation_id}, principal)
    return jsonify(submission_json(submission)), 202


@blueprint.post("/parties/<int:organisation_id>/aros/<int:appointment_id>/withdrawal")
def withdraw_aro(organisation_id: int, appointment_id: int):
    principal = caller()
    payload = {"organisation_id": organisation_id, "appointment_id": appointment_id,
               "reason": body("aro_withdrawal").get("reason", "withdrawn by the SRO")}
    submission, _ = FormService(authority()).submit("aro_withdrawal", payload, principal)
    return jsonify(submission_json(submission))


# --- RA operator -------------------------------------------------------------------------------------------------

@blueprint.get("/queue")
def queue():
    principal = caller()
    return {"submissions": [submission_json(s) for s in FormService(authority()).queue(principal)]}


@blueprint.post("/submissions/<int:submission_id>/verification")
def verify_submission(submission_id: int):
    principal = caller()
    checks = body("verification").get("checks", {})
    return submission_json(FormService(authority()).verify(submission_id, principal, checks))


@blueprint.post("/submissions/<int:submission_id>/approval")
def approve_submission(submission_id: int):
    principal = caller()
    body("none")
    submission, secrets = FormService(authority()).approve(submission_id, principal)
    return submission_json(submission, secrets)


@blueprint.post("/submissions/<int:submission_id>/rejection")
def reject_submission(submission_id: int):
    principal = caller()
    reason = body("rejection")["reason"]
    return submission_json(FormService(authority()).reject(submission_id, principal, reason))


@blueprint.post("/parties/<int:organisation_id>/srept")
def record_srept(organisation_id: int):
    from smki.ra import audit
    from smki.ra.identity import require_operator

    principal = caller()
    require_operator(principal)
    passed = body("srept")["passed"]
    ra = authority()
    party = audit.audited(ra.database, lambda session: registry.record_srept(
        session, actor=principal.label, organisation_id=organisation_id, passed=passed))
    return {"organisation_id": party.id, "srept_passed": party.srept_passed_at is not None}


# --- forms --------------------------------------------------------------------------------------------------------

@blueprint.get("/forms")
def list_forms():
    forms = FormService(authority()).forms.values()
    return {"forms": [{"name": f.name, "title": f.title, "submitted_by": f.submitted_by,
                       "approved_by": f.approved_by, "href": f"/api/v1/ra/forms/{f.name}"} for f in forms]}


@blueprint.get("/forms/<name>")
def form_schema(name: str):
    form = FormService(authority()).definition(name)
    return {"name": form.name, "title": form.title, "description": form.description, "source": form.source,
            "submitted_by": form.submitted_by, "approved_by": form.approved_by,
            "verification": list(form.verification), "workflow": ["submitted", "verified", "approved", "rejected",
                                                                  "withdrawn"],
            "schema": form.schema, "print": f"/api/v1/ra/forms/{form.name}/print"}


@blueprint.get("/forms/<name>/print")
def form_print(name: str):
    form = FormService(authority()).definition(name)
    return render_template("ra/form_print.html", form=form, submission=None)


@blueprint.post("/forms/<name>")
def submit_form(name: str):
    principal = caller(optional=True)
    service = FormService(authority())
    submission, secrets = service.submit(name, json_object(), principal)
    return jsonify(submission_json(submission, secrets)), 201


@blueprint.get("/submissions/<int:submission_id>")
def get_submission(submission_id: int):
    principal = caller()
    return submission_json(FormService(authority()).get(submission_id, principal))


@blueprint.get("/submissions/<int:submission_id>/print")
def print_submission(submission_id: int):
    principal = caller()
    service = FormService(authority())
    submission = service.get(submission_id, principal)
    return render_template("ra/form_print.html", form=service.definition(submission.form), submission=submission)


@blueprint.post("/submissions/<int:submission_id>/withdrawal")
def withdraw_submission(submission_id: int):
    principal = caller()
    body("none")
    return submission_json(FormService(authority()).withdraw(submission_id, principal))


@blueprint.get("/openapi.json")
def openapi():
    from smki.ra.web.openapi import document
    return document()
