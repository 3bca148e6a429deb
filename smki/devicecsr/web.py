"""Flask front end of the Device CSR services: the two XML web services of SEC Appendix M, the
portal's batch upload, and the per-Party soft-limit report. It parses and authenticates, then hands
over; it decides nothing itself.

Authentication is the RA's, one stack per kind of caller: systems and scripts calling the web services
and the limits report present an API token (``Authorization: Bearer``) or their IKI client certificate
(or, behind a TLS-terminating front end, the credential it verified); a person on the upload pages is
signed in to the RA's portal. The gate is handed that explicit :class:`~smki.devicecsr.gate.Caller`.
The upload form carries the portal's CSRF token (Flask-WTF, wired in :mod:`smki.web.csrf`); the web
services are exempt from it, as their callers are systems that present their credential on every call
and are never authenticated by the portal's session.

Routes (``<version>`` is ``1.0``):
- ``POST /<version>/PortalCSRAdHoc/DeviceCertificateSigningRequest``  ad hoc Device CSR (HTTP 200 always)
- ``POST /<version>/PortalCSRBatch/SubmitCSRBatch``                  batch submit
- ``GET  /<version>/PortalCSRBatch/CSRBatchResult?BatchId=n``        batch poll
- ``GET|POST /portal/device-csr-batches``, ``GET /portal/device-csr-batches/<id>`` and
  ``.../<id>/<name>-response.zip``                                    portal zip upload and result
- ``GET /api/v1/device-csr/limits``                                  the caller's soft-limit usage
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from smki.core.bounded import DATABASE_INTEGER_MAX
from smki.core.errors import SmkiError
from smki.devicecsr import adhoc, documents, xml
from smki.devicecsr.batches import ACTIVE, COMPLETED
from smki.devicecsr.gate import CREDENTIAL_HEADER, WF_NOT_AUTHENTICATED, Caller, Refusal, Subscriber
from smki.devicecsr.limits import BATCH_CSRS, POLL
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.ra.web import bearer_token, caller, client_certificate
from smki.ra.web.portal import current

VERSIONS = ("1.0",)
XML_TYPE = "application/xml"
REPORT_WORDS = {"SUCCESS": "success", "ISSUANCE_ANOMALY": "anomaly", "INELIGIBLE": "ineligible"}

blueprint = Blueprint("devicecsr", __name__, template_folder="templates")


def runtime() -> DeviceCsrRuntime:
    app: Flask = current_app
    existing = app.extensions.get("devicecsr")
    if existing is None:
        existing = app.config.get("DEVICECSR_RUNTIME") or DeviceCsrRuntime.build(
            app.config["SMKI_INSTANCE"], gate=app.config.get("DEVICECSR_GATE"),
            on_issued=app.config.get("DEVICECSR_ON_ISSUED"), queue=app.config.get("DEVICECSR_QUEUE_URL"))
        app.extensions["devicecsr"] = existing
    return existing


def _xml(body: bytes | Iterator[bytes], warnings: list[str] | None = None) -> Response:
    response = Response(body, status=200, mimetype=XML_TYPE)
    for warning in warnings or []:
        response.headers.add("X-SMKI-Limit-Warning", warning)
    return response


def _version(version: str) -> None:
    if version not in VERSIONS:
        abort(404, f"interface version {version!r} is not served; use {', '.join(VERSIONS)}.")


def _body(limit: int) -> bytes:
    """At most one byte past the limit, so an oversized request is refused without holding it all (a
    body past the app's own MAX_CONTENT_LENGTH is likewise just 'too large', answered in XML)."""
    try:
        return request.stream.read(limit + 1)
    except RequestEntityTooLarge:
        return b" " * (limit + 1)


# --- who is calling ---------------------------------------------------------------------------------

def _edge_credential() -> str | None:
    return request.headers.get(CREDENTIAL_HEADER) or None


def service_caller() -> Caller | Refusal:
    """A system or script calling the web services or the limits report: an API token or the IKI client
    certificate, as the RA's JSON API authenticates them; never the portal's session cookie."""
    try:
        principal = caller(optional=True) if bearer_token() or client_certificate() else None
    except SmkiError as error:
        return Refusal(WF_NOT_AUTHENTICATED, f"{error.message} ({error.code})")
    return Caller(principal, _edge_credential(), request.args.get("Subscriber"), request.args.get("Manufacturer"))


def portal_caller() -> Caller | Refusal:
    """A person on the upload pages: signed in to the RA's portal, as on every portal page."""
    try:
        principal = current()
    except SmkiError as error:
        return Refusal(WF_NOT_AUTHENTICATED, f"{error.message} ({error.code})")

    def parameter(name: str) -> str | None:
        return request.args.get(name) or (request.form.get(name.lower()) if request.method == "POST" else None)

    return Caller(principal, _edge_credential(), parameter("Subscriber"), parameter("Manufacturer"))


def authenticated(rt: DeviceCsrRuntime, found: Caller | Refusal) -> Subscriber | Refusal:
    return found if isinstance(found, Refusal) else rt.gate.authenticate(found)


# --- ad hoc ----------------------------------------------------------------------------------------

@blueprint.post("/<version>/PortalCSRAdHoc/DeviceCertificateSigningRequest")
def adhoc_csr(version: str) -> Response:
    _version(version)
    rt = runtime()
    body = _body(rt.policy.max_adhoc_bytes)
    result = adhoc.answer(rt, authenticated(rt, service_caller()), body)
    return _xml(result.body, result.warnings)


# --- batched -----------------------------------------------------------------------------------------

def _subscriber_or_refusal(rt: DeviceCsrRuntime, found: Caller | Refusal) -> Subscriber | Refusal:
    subscriber = authenticated(rt, found)
    if isinstance(subscriber, Subscriber) and not subscriber.device_subscriber:
        return Refusal("WF:SUB1", "the Party is not an Authorised Subscriber for Device Certificates.")
    return subscriber


@blueprint.post("/<version>/PortalCSRBatch/SubmitCSRBatch")
def submit_batch(version: str) -> Response:
    _version(version)
    rt = runtime()
    subscriber = _subscriber_or_refusal(rt, service_caller())
    if isinstance(subscriber, Refusal):
        return _xml(xml.submit_status(reference=None, status="WORKFLOW_ERROR", code=subscriber.code,
                                      text=subscriber.text))
    body = _body(rt.policy.max_batch_bytes)
    try:
        submission = documents.check_batch_xml(body, rt.policy)
    except xml.XmlRejected as rejected:
        return _xml(xml.submit_status(reference=None, status="FORMAT_ERROR", code=rejected.code, text=rejected.text))
    findings = rt.limits.check(subscriber.party_id, BATCH_CSRS, len(submission.entries))
    warnings = [f"{f.code} {f.text}" for f in findings]
    refusal = rt.limits.refuses(findings)
    if refusal:
        return _xml(xml.submit_status(reference=submission.reference, status="WORKFLOW_ERROR", code=refusal.code,
                                      text=refusal.text), warnings)
    batch_id = rt.batches.submit(subscriber, body, channel="batch",
                                 reference=submission.reference, csr_count=len(submission.entries))
    return _xml(xml.submit_status(reference=submission.reference, status="PENDING", batch_id=batch_id), warnings)


@blueprint.get("/<version>/PortalCSRBatch/CSRBatchResult")
def batch_result(version: str) -> Response:
    _version(version)
    rt = runtime()
    subscriber = _subscriber_or_refusal(rt, service_caller())
    if isinstance(subscriber, Refusal):
        return _xml(xml.batch_result_error(subscriber.code, subscriber.text))
    raw_id = request.args.get("BatchId", "")
    # ASCII digits only (str.isdigit admits '²', which int() refuses); no batch is past the database's integer
    numbered = raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 12 and int(raw_id) <= DATABASE_INTEGER_MAX
    view = rt.batches.view(int(raw_id), subscriber.party_id) if numbered else None
    if view is None:
        return _xml(xml.batch_result_error(documents.FM_UNKNOWN_BATCH, (
            f"there is no batch {raw_id!r} for this Party (results are kept "
            f"{rt.policy.retention.days} days).")))
    findings = rt.limits.check(subscriber.party_id, POLL, subject=str(view.id))
    warnings = [f"{f.code} {f.text}" for f in findings]
    refusal = rt.limits.refuses(findings)
    if refusal:
        return _xml(xml.batch_result_error(refusal.code, refusal.text), warnings)
    error = (view.error_code, view.error_text or "") if view.error_code else None
    if view.status != COMPLETED:
        return _xml(b"".join(xml.batch_result(view.id, view.status, [], error)), warnings)

    def results() -> Iterator[xml.CsrResult]:
        for result, der, _device in rt.batches.results(view.id):
            if der is not None:
                yield xml.CsrResult(result.csr_ref, result.status, base64.b64encode(der).decode(), None, None)
            else:
                yield result

    return _xml(xml.batch_result(view.id, view.status, results()), warnings)


# --- portal ------------------------------------------------------------------------------------------

def _portal_subscriber(rt: DeviceCsrRuntime) -> Subscriber:
    subscriber = _subscriber_or_refusal(rt, portal_caller())
    if isinstance(subscriber, Refusal):
        signing_in = "ra_portal.login" in current_app.view_functions
        if subscriber.code == WF_NOT_AUTHENTICATED and request.method == "GET" and signing_in:
            # a person who has not signed in is sent to sign in, and brought back here
            abort(redirect(url_for("ra_portal.login", next=request.path)))
        abort(403, f"{subscriber.code} {subscriber.text}")
    return subscriber


@blueprint.route("/portal/device-csr-batches", methods=["GET", "POST"])
def portal_batches() -> Any:
    rt = runtime()
    subscriber = _portal_subscriber(rt)
    error = None
    if request.method == "POST":
        upload = request.files.get("archive")
        if upload is None or not upload.filename:
            error = ("FM:AA1", "choose a .zip file of .csr files to upload.")
        else:
            name = upload.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
            name = name[:-4] if name.lower().endswith(".zip") else name
            data = upload.stream.read(rt.policy.max_batch_bytes + 1)
            try:
                submission = documents.check_zip(data, name, rt.policy, rt.instance.policies.csr.max_size_bytes)
            except xml.XmlRejected as rejected:
                error = (rejected.code, rejected.text)
            else:
                findings = rt.limits.check(subscriber.party_id, BATCH_CSRS, len(submission.entries))
                refusal = rt.limits.refuses(findings)
                if refusal:
                    error = (refusal.code, refusal.text)
                else:
                    batch_id = rt.batches.submit(subscriber, data, channel="portal", reference=name,
                                                 csr_count=len(submission.entries))
                    return redirect(url_for("devicecsr.portal_batch", batch_id=batch_id), code=303)
    return render_template("devicecsr_upload.html", error=error, max_csrs=rt.policy.max_batch_csrs), \
        (400 if error else 200)


@blueprint.get("/portal/device-csr-batches/<int:batch_id>")
def portal_batch(batch_id: int) -> Any:
    rt = runtime()
    subscriber = _portal_subscriber(rt)
    view = rt.batches.view(batch_id, subscriber.party_id)
    if view is None or view.channel != "portal":
        abort(404, f"{documents.FM_UNKNOWN_BATCH} there is no upload {batch_id} for this Party.")
    return render_template("devicecsr_batch.html", batch=view, active=view.status in ACTIVE,
                           completed=view.status == COMPLETED, archive=f"{view.reference}-response.zip")


@blueprint.get("/portal/device-csr-batches/<int:batch_id>/<archive>")
def portal_result(batch_id: int, archive: str) -> Response:
    rt = runtime()
    subscriber = _portal_subscriber(rt)
    view = rt.batches.view(batch_id, subscriber.party_id)
    if view is None or view.channel != "portal" or view.status != COMPLETED \
            or archive != f"{view.reference}-response.zip":
        abort(404, f"{documents.FM_UNKNOWN_BATCH} no completed result {archive!r} for upload {batch_id}.")
    buffer = io.BytesIO()
    lines = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for result, der, device in rt.batches.results(batch_id):
            stem = result.csr_ref[:-4] if result.csr_ref.lower().endswith(".csr") else result.csr_ref
            if der is not None:
                pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
                out.writestr(f"{stem}.crt", pem)
            word = REPORT_WORDS.get(result.status, "error")
            lines.append(f"{device or '-'},{result.csr_ref},{word},{result.code or '-'}")
        out.writestr(f"{view.reference}-response.txt", "\n".join(lines) + "\n")
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{archive}"'
    return response


# --- soft limits ---------------------------------------------------------------------------------------

@blueprint.get("/api/v1/device-csr/limits")
def limits_report() -> Any:
    rt = runtime()
    subscriber = authenticated(rt, service_caller())
    if isinstance(subscriber, Refusal):
        abort(401, f"{subscriber.code} {subscriber.text}")
    return rt.limits.report(subscriber.party_id)
