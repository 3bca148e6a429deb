"""The Repository's JSON API (``/api/v1/repository``): search and retrieval, certificate downloads,
the CRL and ARL, and lodged documents. The OpenAPI document is at ``/api/v1/repository/openapi.json``.

Callers identify themselves with a Repository API key (header ``X-API-Key`` or query ``apikey``) or a
portal session. The CRL and ARL are public.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, jsonify, request, url_for

from repository.access import Holder
from repository.crls import PublishedList
from repository.errors import RepositoryError
from repository.store import CertificateRecord, SearchCriteria
from repository.web import common
from repository.web.openapi import openapi_document
from smki.core.bounded import parse_query_int
from smki.core.errors import SmkiError
from smki.core.problem import error_response

blueprint = Blueprint("repository_api", __name__, url_prefix="/api/v1/repository")

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PEM_FILE = "application/x-pem-file"
LIST_NAMES = {"crl": "crl", "arl": "arl"}


@blueprint.errorhandler(RepositoryError)
def repository_error(error: RepositoryError) -> Response:
    return error_response(error)


def require_holder() -> Holder:
    holder = common.current_holder()
    if holder is None:
        raise RepositoryError("AU:KEY1", "give a Repository API key in the X-API-Key header or the apikey "
                              "query parameter", status=401)
    return holder


def _time(name: str) -> dt.datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RepositoryError("RP:SRC6", f"{name} must be an ISO 8601 date or time, such as 2026-01-31 or "
                              "2026-01-31T12:00:00Z", field=name) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _int(name: str, minimum: int = 0) -> int | None:
    try:
        return parse_query_int(request.args.get(name), field=name, code="RP:SRC7", minimum=minimum)
    except SmkiError as refusal:  # as the Repository's own refusal, which its portal pages render
        raise RepositoryError(refusal.code, refusal.message, field=name) from None


def _flag(name: str) -> bool | None:
    value = request.args.get(name)
    if value in (None, ""):
        return None
    if value.lower() not in ("true", "false"):
        raise RepositoryError("RP:SRC8", f"{name} must be true or false", field=name)
    return value.lower() == "true"


def criteria_from_request() -> SearchCriteria:
    args = request.args
    return SearchCriteria(
        serial=args.get("serial") or None, issuer=args.get("issuer") or None,
        subject_eui=args.get("subject_eui") or None, device_id=args.get("device_id") or None,
        role=_int("role"), usage=args.get("usage") or None, status=args.get("status") or None,
        kind=args.get("kind") or None, manufacturing_flag=_flag("manufacturing_flag"),
        not_before_from=_time("not_before_from"), not_before_until=_time("not_before_until"),
        not_after_from=_time("not_after_from"), not_after_until=_time("not_after_until"),
        lodged_from=_time("lodged_from"), lodged_until=_time("lodged_until"))


def certificate_json(record: CertificateRecord) -> dict[str, Any]:
    out = record.summary()
    out["subject_eui"] = record.subject_eui_hyphenated
    out["device_id"] = record.device_id_hyphenated
    out["links"] = {
        "self": url_for("repository_api.certificate", serial=record.serial, issuer=record.issuer),
        "pem": url_for("repository_api.certificate_pem", serial=record.serial, issuer=record.issuer),
        "der": url_for("repository_api.certificate_der", serial=record.serial, issuer=record.issuer),
    }
    return out


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@blueprint.get("/certificates")
def search():
    require_holder()
    limit = _int("limit", minimum=1) or int(common.settings().web_service["page_size"])
    page = common.certificates().search(criteria_from_request(), limit=limit, cursor=request.args.get("cursor"))
    body: dict[str, Any] = {"certificates": [certificate_json(r) for r in page.records],
                            "next_cursor": page.next_cursor}
    if page.next_cursor:
        args = {k: v for k, v in request.args.items() if k not in ("cursor", "apikey")}
        body["links"] = {"next": url_for("repository_api.search", cursor=page.next_cursor, **args)}
    return body


def _record(serial: str) -> CertificateRecord:
    return common.certificates().require(serial, request.args.get("issuer") or None)


@blueprint.get("/certificates/<serial>")
def certificate(serial: str):
    require_holder()
    record = _record(serial)
    if request.accept_mimetypes.best_match(["application/json", PKIX_CERT]) == PKIX_CERT:
        return _download(record, "der")
    return certificate_json(record)


def _download(record: CertificateRecord, form: str) -> Response:
    der = record.der or b""
    if form == "pem":
        body = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        response = Response(body, mimetype=PEM_FILE)
    else:
        response = Response(der, mimetype=PKIX_CERT)
    extension = "pem" if form == "pem" else "cer"
    response.headers["Content-Disposition"] = f'attachment; filename="{record.serial}.{extension}"'
    response.set_etag(record.sha256)
    response.make_conditional(request)  # in place: answers 304 when the ETag matches
    return response


@blueprint.get("/certificates/<serial>/pem")
def certificate_pem(serial: str) -> Response:
    require_holder()
    return _download(_record(serial), "pem")


@blueprint.get("/certificates/<serial>/der")
def certificate_der(serial: str) -> Response:
    require_holder()
    return _download(_record(serial), "der")


# ------------------------------------------------------------------------------------ CRL and ARL
def crl_response(published: PublishedList | None, name: str) -> Response:
    if published is None:
        raise RepositoryError("RP:CRL1", f"no {name.upper()} has been published yet", status=404)
    response = Response(published.der, mimetype=PKIX_CRL)
    response.set_etag(published.sha256[:32])
    response.last_modified = published.this_update
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Content-Disposition"] = (f'inline; filename="{"organisation" if name == "crl" else "authority"}'
                                               f'-{published.number}.{name}"')
    response.make_conditional(request)  # in place: answers 304 when the ETag matches
    return response


@blueprint.get("/crl")
def current_crl() -> Response:
    return crl_response(common.revocation_lists().latest("crl"), "crl")


@blueprint.get("/arl")
def current_arl() -> Response:
    return crl_response(common.revocation_lists().latest("arl"), "arl")


@blueprint.get("/<any(crl, arl):name>/<int:number>")
def numbered_list(name: str, number: int) -> Response:
    return crl_response(common.revocation_lists().by_number(name, number), name)


@blueprint.get("/revocation-lists")
def revocation_lists_summary():
    out = {}
    for name in LIST_NAMES:
        latest = common.revocation_lists().latest(name)
        out[name] = None if latest is None else {
            "number": latest.number, "this_update": latest.this_update.isoformat().replace("+00:00", "Z"),
            "next_update": latest.next_update.isoformat().replace("+00:00", "Z"), "entries": latest.entries,
            "sha256": latest.sha256, "href": url_for(f"repository_api.current_{name}")}
    return out


# ------------------------------------------------------------------------------------ documents
@blueprint.get("/documents")
def list_documents():
    holder = require_holder()
    return {"documents": [dict(d.summary(), href=url_for("repository_api.document", name=d.name))
                          for d in common.documents().latest(reader_roles=holder.roles)]}


@blueprint.get("/documents/<name>")
def document(name: str):
    holder = require_holder()
    versions = common.documents().versions(name, reader_roles=holder.roles)
    if not versions:
        raise RepositoryError("RP:DOC7", f"there is no document {name!r}", status=404)
    return {"name": name, "versions": [
        dict(v.summary(), href=url_for("repository_api.document_content", name=name, version=v.version))
        for v in versions]}


@blueprint.get("/documents/<name>/content")
def document_content(name: str) -> Response:
    holder = require_holder()
    version, content = common.documents().content(name, _int("version"), reader_roles=holder.roles)
    response = Response(content, mimetype=version.media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{version.file_name}"'
    response.set_etag(version.sha256)
    response.make_conditional(request)  # in place: answers 304 when the ETag matches
    return response


@blueprint.post("/documents")
def lodge_document():
    holder = require_holder()
    if not holder.may_lodge_documents:
        raise RepositoryError("AZ:DOC1", "only the SMKI PMA and the Code Administrator, through an ARO, lodge "
                              "documents; this API key is not entitled to", status=403)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise RepositoryError("RP:DOC8", "send a JSON object with name, title, media_type and content_base64")
    try:
        content = base64.b64decode(str(data.get("content_base64", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RepositoryError("RP:DOC9", "content_base64 is not valid base64", field="content_base64") from exc
    audience = data.get("audience")
    if audience is not None and audience != "all" and not (
            isinstance(audience, list) and audience and all(isinstance(role, str) for role in audience)):
        raise RepositoryError("RP:DOC10", "audience is 'all' or a list of Repository roles, such as "
                              '["sec_panel", "smki_pma"]', field="audience")
    lodged = common.documents().lodge(str(data.get("name", "")), content, title=str(data.get("title", "")),
                                      media_type=str(data.get("media_type", "")), lodged_by=holder.name,
                                      file_name=data.get("file_name") or None,
                                      audience=None if audience in (None, "all") else audience)
    return dict(lodged.summary(), href=url_for("repository_api.document", name=lodged.name)), 201
