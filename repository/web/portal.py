"""Repository portal pages (``/repository``): log-in, search, certificate detail, CRL and ARL, documents.

Log-in is username and password (Appendix P); the session is a random token in an HttpOnly, SameSite=Strict
cookie, held server-side as a hash. Plain HTML with labels, captions and a skip link (WCAG-minded).
"""

from __future__ import annotations

from functools import wraps
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from repository.access import AccountLocked
from repository.decode import decode
from repository.errors import RepositoryError
from repository.store import STATUSES
from repository.web import common
from repository.web.api import criteria_from_request

blueprint = Blueprint("repository_portal", __name__, url_prefix="/repository", template_folder="../templates")
PAGE_SIZE = 50
# The portal's requests in the request log, by page: Appendix P's demand rule counts Portal requests beside Web
# Service ones (policies/variance.yaml, repository_demand.interfaces.portal, names these operations).
LOGGED_OPERATIONS = {
    "repository_portal.search": "portal_search",
    "repository_portal.certificate": "portal_view",
    "repository_portal.download_pem": "portal_download",
    "repository_portal.document": "portal_download",
}


def login_required(view):
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        token = request.cookies.get(common.SESSION_COOKIE)
        found = common.access().session_holder(token) if token else None
        if found is None:
            return redirect(url_for("repository_portal.login", next=request.full_path.rstrip("?")))
        g.repository_username, g.repository_holder = found
        return view(*args, **kwargs)

    return wrapped


@blueprint.after_request
def log_portal_request(response: Response) -> Response:
    """A signed-in user's search, certificate view or download goes into the request log, as a Web Service
    request does; a search page opened with no criteria is not a search."""
    operation = LOGGED_OPERATIONS.get(request.endpoint or "")
    holder = g.get("repository_holder")
    if operation and holder is not None and (operation != "portal_search" or any(request.args.values())):
        detail = (request.view_args or {}).get("serial") or (request.view_args or {}).get("name")
        common.record_request(common.audit_reference(), holder, operation, response.status_code,
                              str(detail) if detail is not None else None)
    return response


def _safe_next(target: str | None) -> str:
    # only ever back into the portal: never an open redirect
    if target and target.startswith("/repository") and not target.startswith("//"):
        return target
    return url_for("repository_portal.search")


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    error = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            holder = common.access().authenticate_user(username, request.form.get("password", ""))
        except AccountLocked as locked:
            holder, error, status = None, locked.message, 403
        else:
            if holder is None:
                error, status = "The username or password is not right. After 5 failures in an hour the " \
                                "account is locked for an hour.", 401
        if holder is not None:
            response = redirect(_safe_next(request.args.get("next")))
            response.set_cookie(common.SESSION_COOKIE, common.access().open_session(username), httponly=True,
                                samesite="Strict", secure=request.is_secure, path="/")
            return response
    return render_template("repository_login.html", error=error), status


@blueprint.post("/logout")
def logout():
    token = request.cookies.get(common.SESSION_COOKIE)
    if token:
        common.access().close_session(token)
    response = redirect(url_for("repository_portal.login"))
    response.delete_cookie(common.SESSION_COOKIE, path="/")
    return response


@blueprint.get("/")
@login_required
def search():
    searched = any(v for k, v in request.args.items() if k != "cursor")
    records, next_url, error = [], None, None
    if searched:
        try:
            page = common.certificates().search(criteria_from_request(), limit=PAGE_SIZE,
                                                cursor=request.args.get("cursor") or None)
        except RepositoryError as refusal:
            error = refusal.message
        else:
            records = page.records
            if page.next_cursor:
                args = {k: v for k, v in request.args.items() if k != "cursor" and v}
                next_url = url_for("repository_portal.search") + "?" + urlencode({**args, "cursor": page.next_cursor})
    return render_template("repository_search.html", records=records, searched=searched, next_url=next_url,
                           error=error, args=request.args, statuses=STATUSES), (400 if error else 200)


def _record():
    return common.certificates().require(request.view_args["serial"], request.args.get("issuer") or None)


@blueprint.get("/certificates/<serial>")
@login_required
def certificate(serial: str):
    try:
        record = _record()
    except RepositoryError as refusal:
        return render_template("repository_error.html", message=refusal.message), refusal.status
    pem = x509.load_der_x509_certificate(record.der or b"").public_bytes(Encoding.PEM).decode()
    return render_template("repository_certificate.html", record=record, fields=decode(record.der or b""), pem=pem)


@blueprint.get("/certificates/<serial>/download.pem")
@login_required
def download_pem(serial: str) -> Response:
    record = _record()
    body = x509.load_der_x509_certificate(record.der or b"").public_bytes(Encoding.PEM)
    return Response(body, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'attachment; filename="{record.serial}.pem"'})


@blueprint.get("/revocation-lists")
@login_required
def revocation_lists():
    lists = []
    for name, title, href in (("crl", "Organisation CRL", url_for("repository_api.current_crl")),
                              ("arl", "Authority Revocation List (ARL)", url_for("repository_api.current_arl"))):
        latest = common.revocation_lists().latest(name)
        entries = []
        if latest is not None:
            crl = x509.load_der_x509_crl(latest.der)
            for revoked in crl:
                try:
                    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
                except x509.ExtensionNotFound:
                    reason = "unspecified"
                entries.append((f"{revoked.serial_number:X}".zfill(32), revoked.revocation_date_utc, reason))
        lists.append({"name": name, "title": title, "href": href, "latest": latest, "entries": entries})
    return render_template("repository_lists.html", lists=lists)


@blueprint.get("/documents")
@login_required
def documents():
    store = common.documents()
    roles = g.repository_holder.roles
    return render_template("repository_documents.html", documents=[
        (d, store.versions(d.name, reader_roles=roles)) for d in store.latest(reader_roles=roles)])


@blueprint.get("/documents/<name>/<int:version>")
@login_required
def document(name: str, version: int) -> Response | tuple[str, int]:
    try:
        lodged, content = common.documents().content(name, version, reader_roles=g.repository_holder.roles)
    except RepositoryError as refusal:  # RP:DOC7 alike for a missing document and one the user may not read
        return render_template("repository_error.html", code=refusal.code, message=refusal.message), refusal.status
    return Response(content, mimetype=lodged.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{lodged.file_name}"'})
