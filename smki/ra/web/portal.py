"""The SMKI portal pages of the RA: AROs submit Organisation CSRs by pasting PEM and download
certificates; SROs nominate and withdraw AROs; RA operators work the verification queue.

Sign-in is by the IKI client certificate when the service runs with mutual TLS, or by pasting an API
token (the sandbox's stand-in for the PIN-protected token). The session cookie holds only the credential
number, which is re-checked on every request, so a withdrawal ends a portal session at once. Every form
carries the app's CSRF token (Flask-WTF's CSRFProtect, wired in :mod:`smki.web.csrf`), sign-in included.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from smki.core.errors import SmkiError
from smki.core.problem import status_for
from smki.ra import registry
from smki.ra.forms import FormService
from smki.ra.identity import NotAuthenticated, Principal, principal_for, require_aro, require_operator, require_sro
from smki.ra.models import Credential, Organisation, Person
from smki.ra.web import authority, bearer_token, client_certificate

blueprint = Blueprint("ra_portal", __name__, url_prefix="/portal", template_folder="templates")


def register(app: Flask) -> None:
    if not app.secret_key:  # the instance's one session key (smki.instance.SESSION_KEY), made before any worker
        app.secret_key = app.config["SMKI_INSTANCE"].session_key
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.register_blueprint(blueprint)


def current() -> Principal | None:
    """The signed-in person: client certificate, a Bearer token, or the portal session's credential."""
    ra = authority()
    if bearer_token() or client_certificate():
        from smki.ra.web import caller
        return caller()
    credential_id = session.get("credential")
    if credential_id is None:
        return None
    with ra.database.session() as db:
        credential = db.get(Credential, credential_id)
        if credential is None or credential.status != "active":
            session.clear()
            raise NotAuthenticated("AU:TOK03", "your credential was revoked (you were withdrawn); sign in again "
                                   "once your SRO has nominated you again.")
        return principal_for(db, credential)


def signed_in() -> Principal:
    principal = current()
    if principal is None:
        abort(redirect(url_for("ra_portal.login", next=request.path)))
    return principal


@blueprint.errorhandler(SmkiError)
def portal_error(error: SmkiError):
    return render_template("ra/error.html", error=error, principal=None), status_for(error)


def page(template: str, principal: Principal | None, **values: Any) -> str:
    return render_template(f"ra/{template}", principal=principal, **values)


# --- sign-in ------------------------------------------------------------------------------------------------------

@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        token = request.form.get("token", "").strip()
        principal = authority().authenticate_token(token)
        session.clear()
        session["credential"] = principal.credential_id
        target = request.args.get("next") or url_for("ra_portal.home")
        return redirect(target if target.startswith("/portal") else url_for("ra_portal.home"))
    return page("login.html", None)


@blueprint.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("ra_portal.login"))


@blueprint.get("/")
def home():
    principal = signed_in()
    return page("home.html", principal)


# --- ARO ----------------------------------------------------------------------------------------------------------

@blueprint.route("/csr", methods=["GET", "POST"])
def organisation_csr():
    principal = signed_in()
    require_aro(principal, "organisation")
    if request.method == "GET":
        return page("csr.html", principal, error=None, pem="")
    pem = request.form.get("csr", "")
    try:
        release = authority().submit_organisation_csr(principal, pem, channel="portal")
    except SmkiError as error:
        if error.family in ("AU", "AZ"):
            raise
        return page("csr.html", principal, error=error, pem=pem), status_for(error)
    return page("issued.html", principal, release=release, pem=release.certificate.pem.decode())


@blueprint.get("/certificates/<serial>.pem")
def download(serial: str):
    principal = signed_in()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der, row = authority().certificate(principal, serial)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return Response(pem, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'attachment; filename="{row.serial}.pem"'})


# --- SRO ----------------------------------------------------------------------------------------------------------

def _party_aros(organisation_id: int) -> tuple[str, list[dict[str, Any]]]:
    ra = authority()
    with ra.database.session() as db:
        party = registry.organisation(db, organisation_id)
        people = {p.id: p.name for p in db.execute(select(Person).where(Person.organisation_id == organisation_id))
                  .scalars()}
        aros = [{"id": a.id, "name": people.get(a.person_id, "?"), "status": a.status,
                 "scopes": [s for s, on in (("Organisation", a.scope_organisation), ("Device", a.scope_device),
                                            ("Repository", a.scope_repository)) if on]}
                for a in registry.appointments(db, organisation_id, "aro")]
        return party.name, aros


@blueprint.route("/aros", methods=["GET", "POST"])
def aros():
    principal = signed_in()
    sro = require_sro(principal)
    party = sro.organisation_id
    assert party is not None
    message, error, submission = None, None, None
    if request.method == "POST":
        payload = {"organisation_id": party, "name": request.form.get("name", "").strip(),
                   "email": request.form.get("email", "").strip(), "scopes": request.form.getlist("scopes"),
                   "acts_for": [party]}
        try:
            submission, _ = FormService(authority()).submit("aro_nomination", payload, principal)
            message = (f"ARO Nomination Form {submission.id} submitted for {payload['name']}: the RA will verify "
                       "identity and BS 7858 screening.")
        except SmkiError as failure:
            error = failure
    name, rows = _party_aros(party)
    return page("aros.html", principal, party=name, aros=rows, message=message, error=error), \
        (status_for(error) if error else 200)


@blueprint.post("/aros/<int:appointment_id>/withdraw")
def withdraw(appointment_id: int):
    principal = signed_in()
    sro = require_sro(principal)
    FormService(authority()).submit("aro_withdrawal", {
        "organisation_id": sro.organisation_id, "appointment_id": appointment_id,
        "reason": request.form.get("reason", "").strip() or "withdrawn by the SRO"}, principal)
    return redirect(url_for("ra_portal.aros"))


# --- RA operator --------------------------------------------------------------------------------------------------

@blueprint.get("/queue")
def queue():
    principal = signed_in()
    service = FormService(authority())
    submissions = service.queue(principal)
    with authority().database.session() as db:
        names = {o.id: o.name for o in db.execute(select(Organisation)).scalars()}
    return page("queue.html", principal, submissions=submissions, forms=service.forms, names=names,
                credentials=None, approved=None)


@blueprint.post("/queue/<int:submission_id>/<action>")
def queue_action(submission_id: int, action: str):
    principal = signed_in()
    require_operator(principal)
    service = FormService(authority())
    if action == "verify":
        form = service.definition(service.get(submission_id, principal).form)
        checks = {check: request.form.get(check) == "on" for check in form.verification}
        service.verify(submission_id, principal, checks)
    elif action == "approve":
        submission, credentials = service.approve(submission_id, principal)
        with authority().database.session() as db:
            names = {o.id: o.name for o in db.execute(select(Organisation)).scalars()}
        return page("queue.html", principal, submissions=service.queue(principal), forms=service.forms, names=names,
                    credentials=credentials, approved=submission)
    elif action == "reject":
        service.reject(submission_id, principal, request.form.get("reason"))
    else:
        abort(404)
    return redirect(url_for("ra_portal.queue"))


# --- RAPP forms ---------------------------------------------------------------------------------------------------

@blueprint.get("/forms")
def forms():
    return page("forms.html", current(), forms=list(FormService(authority()).forms.values()))


@blueprint.route("/forms/<name>", methods=["GET", "POST"])
def form(name: str):
    """Any RAPP form, laid out from its schema; submitted as the JSON API submits it. Who may submit which
    form is the form service's decision (some, like Party registration, need no sign-in)."""
    from smki.ra.web.form_fields import controls, payload

    principal = current()
    service = FormService(authority())
    definition = service.definition(name)
    if request.method == "GET":
        return page("form.html", principal, form=definition, controls=controls(definition), values={}, error=None)
    try:
        submission, secrets_shown = service.submit(name, payload(definition, request.form), principal)
    except SmkiError as error:
        if error.family in ("AU", "AZ"):
            raise
        return page("form.html", principal, form=definition, controls=controls(definition), values=request.form,
                    error=error), status_for(error)
    return page("submitted.html", principal, form=definition, submission=submission, secrets=secrets_shown)
