"""The Repository web service of SEC Appendix O, as DCC Boxed serves it.

``POST /services/certificatesearch?apikey=KEY`` with ``CertificateSearchRequest`` holding exactly one of
``CertificateSubjectName`` (an Organisation subject's EUI-64) or ``CertificateSubjectAltName`` (a Device
ID); ``POST /services/retrievecertificate?apikey=KEY`` with ``CertificateDataRequest { CertificateSerial }``.
Responses are un-namespaced XML, ``application/xml``: HTTP 200 with results, 402 when nothing is found,
401 for invalid parameters (malformed or oversized XML, a missing or unknown API key, a bad EUI-64 or
serial). This is what Smart DCC's ``@smartdcc/dccboxed-keystore`` client expects.

Requests are parsed with defusedxml: no DTDs, no entities, no network, and a size limit.
"""

from __future__ import annotations

import base64
import textwrap
import xml.etree.ElementTree as ET  # for its ParseError; requests go through defusedxml
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from flask import Blueprint, Response, request
from sqlalchemy import ColumnElement

from repository.access import KeyedRead
from repository.errors import RepositoryError
from repository.store import ServiceRecord, by_serial_criteria, by_subject_criteria, normalised_serial
from repository.web import common
from smki.core.eui64 import Eui64

blueprint = Blueprint("repository_xml", __name__, url_prefix="/services")

XML_MEDIA_TYPE = "application/xml; charset=utf-8"
SEARCH_NAMES = ("CertificateSubjectName", "CertificateSubjectAltName")


class InvalidRequest(Exception):
    """Anything that makes the request one the service cannot act on: answered 401."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(expected_root: str) -> dict[str, str]:
    limit = int(common.settings().web_service["max_body_bytes"])
    if request.content_length is not None and request.content_length > limit:
        raise InvalidRequest(f"the request is larger than {limit} bytes")
    body = request.get_data(cache=False)
    if len(body) > limit:
        raise InvalidRequest(f"the request is larger than {limit} bytes")
    if not body.strip():
        raise InvalidRequest(f"the request body is empty; send a {expected_root} document")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except LookupError as exc:  # expat asks Python's codecs for an encoding it does not know itself
        raise InvalidRequest(f"the XML declaration names an encoding this service does not read ({exc}); "
                             "send UTF-8") from exc
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise InvalidRequest(f"the request is not well-formed XML ({exc})") from exc
    if _local(root.tag) != expected_root:
        raise InvalidRequest(f"the request must be a {expected_root} element, not {_local(root.tag)}")
    fields: dict[str, str] = {}
    for child in root:
        name = _local(child.tag)
        if name in fields:
            raise InvalidRequest(f"{name} appears more than once")
        if len(child):
            raise InvalidRequest(f"{name} must hold text only")
        fields[name] = (child.text or "").strip()
    return fields


def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def _hyphenated(hex_eui: str) -> str:
    """``90B3D51F30010000`` (as the store keeps an EUI-64) -> ``90-B3-D5-1F-30-01-00-00``."""
    return "-".join(hex_eui[i:i + 2] for i in range(0, len(hex_eui), 2))


def _fields(record: ServiceRecord, *, with_body: bool) -> str:
    """The fields of one certificate, in the order DCC Boxed sends them."""
    if record.kind == "device":
        subject = _element("CertificateSubjectAltName", _hyphenated(record.device_id)) if record.device_id else ""
    else:
        subject = _element("CertificateSubjectName", _hyphenated(record.subject_eui)) if record.subject_eui else ""
    serial = _element("CertificateSerial", record.serial)
    parts = [subject, serial] if with_body else [serial, subject]
    parts.append(_element("CertificateStatus", record.status))
    if with_body:
        parts.append(_element("CertificateBody",
                              "\n".join(textwrap.wrap(base64.b64encode(record.der or b"").decode(), 64))))
    if record.kind != "device" and record.role is not None:
        parts.append(_element("CertificateRole", str(record.role)))
    if record.usage:
        parts.append(_element("CertificateUsage", record.usage))
    parts.append(_element("ManufacturingFlag", "true" if record.manufacturing_flag else "false"))
    return "".join(parts)


def _respond(root_name: str, reference: str, status: int, message: str, content: str = "") -> Response:
    """The answer: built as text (the same bytes ElementTree wrote, at a fraction of its cost), every value
    escaped."""
    body = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{root_name}>'
            f"{_element('ResponseCode', str(status))}{_element('ResponseMessage', message)}"
            f"{_element('AuditReference', reference)}{content}</{root_name}>")
    return Response(body, status=status, content_type=XML_MEDIA_TYPE)


KEY_REFUSED = "the apikey query parameter is missing or is not a valid Repository API key"


def _refused(root_name: str, operation: str, reference: str, message: str, *, key_checked: bool = False) -> Response:
    """A 401. A request refused before its key was read (a bad body) still reports a bad key first, and
    logs the holder of a good one."""
    holder = None
    if not key_checked:
        holder = common.access().authenticate_api_key(request.args.get("apikey"),
                                                      dccboxed_compatible=common.dccboxed_compatible())
    if holder is None:
        message = KEY_REFUSED
    common.record_request(reference, holder, operation, 401, message)
    return _respond(root_name, reference, 401, f"Invalid request: {message}")


def _keyed_read(criteria: ColumnElement[bool], parameters: dict[str, Any], *, limit: int,
                with_body: bool = False) -> KeyedRead:
    """The certificates and the caller's API key, in one query (:meth:`RepositoryAccess.read_with_api_key`)."""
    return common.access().read_with_api_key(request.args.get("apikey"), criteria, parameters, limit=limit,
                                             with_body=with_body, dccboxed_compatible=common.dccboxed_compatible())


def _search_subject(fields: dict[str, str]) -> tuple[str, str, Eui64]:
    """The element given, its text, and the EUI-64 it names."""
    given = [name for name in SEARCH_NAMES if name in fields]
    unknown = sorted(set(fields) - set(SEARCH_NAMES))
    if unknown:
        raise InvalidRequest(f"unexpected element {unknown[0]}; give one of {' or '.join(SEARCH_NAMES)}")
    if len(given) != 1:
        raise InvalidRequest(f"give exactly one of {' or '.join(SEARCH_NAMES)}")
    try:
        eui = Eui64.parse(fields[given[0]])
    except ValueError as exc:
        raise InvalidRequest(f"{given[0]} is not an EUI-64 such as 90-B3-D5-1F-30-01-00-00") from exc
    return given[0], fields[given[0]], eui


@blueprint.post("/certificatesearch")
def certificate_search() -> Response:
    reference = common.audit_reference()
    operation, root_name = "certificatesearch", "CertificateSearchResponse"
    try:
        element, subject, eui = _search_subject(_parse("CertificateSearchRequest"))
        column = "subject_eui" if element == "CertificateSubjectName" else "device_id"
        read = _keyed_read(by_subject_criteria(column), {"subject": eui.hex},
                           limit=int(common.settings().web_service["max_results"]))
    except (InvalidRequest, RepositoryError) as error:
        return _refused(root_name, operation, reference, _message(error))
    if read.holder is None:
        return _refused(root_name, operation, reference, KEY_REFUSED, key_checked=True)
    if not read.records:
        common.record_request(reference, read.holder, operation, 402, subject)
        return _respond(root_name, reference, 402, "No certificates found")
    results = "".join(f"<Result>{_fields(record, with_body=False)}</Result>" for record in read.records)
    common.record_request(reference, read.holder, operation, 200, f"{subject}: {len(read.records)}")
    return _respond(root_name, reference, 200, "Success", results)


@blueprint.post("/retrievecertificate")
def retrieve_certificate() -> Response:
    reference = common.audit_reference()
    operation, root_name = "retrievecertificate", "CertificateDataResponse"
    try:
        fields = _parse("CertificateDataRequest")
        if set(fields) != {"CertificateSerial"}:
            raise InvalidRequest("give exactly one CertificateSerial")
        # Two issuers may in principle share a serial; the service answers one certificate: the first lodged.
        read = _keyed_read(by_serial_criteria(), {"serial": normalised_serial(fields["CertificateSerial"])},
                           limit=1, with_body=True)
    except (InvalidRequest, RepositoryError) as error:
        return _refused(root_name, operation, reference, _message(error))
    if read.holder is None:
        return _refused(root_name, operation, reference, KEY_REFUSED, key_checked=True)
    if not read.records:
        common.record_request(reference, read.holder, operation, 402, fields["CertificateSerial"])
        return _respond(root_name, reference, 402, "Certificate not found")
    record = read.records[0]
    common.record_request(reference, read.holder, operation, 200, record.serial)
    return _respond(root_name, reference, 200, "Success",
                    f"<CertificateResponse>{_fields(record, with_body=True)}</CertificateResponse>")


def _message(error: InvalidRequest | RepositoryError) -> str:
    return str(error) if isinstance(error, InvalidRequest) else error.message
