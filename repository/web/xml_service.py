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
import xml.etree.ElementTree as ET  # building responses only; requests go through defusedxml
from typing import Any

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from flask import Blueprint, Response, request
from sqlalchemy import Select

from repository.access import KeyedRead
from repository.errors import RepositoryError
from repository.store import CertificateRecord, by_serial_statement, by_subject_statement, normalised_serial
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


def _element(parent: ET.Element, name: str, text: str) -> None:
    ET.SubElement(parent, name).text = text


def _fields(parent: ET.Element, record: CertificateRecord, *, with_body: bool) -> None:
    """The fields of one certificate, in the order DCC Boxed sends them."""
    subject = ("CertificateSubjectAltName", record.device_id_hyphenated) if record.kind == "device" else (
        "CertificateSubjectName", record.subject_eui_hyphenated)
    if with_body:
        if subject[1]:
            _element(parent, *subject)  # type: ignore[arg-type]
        _element(parent, "CertificateSerial", record.serial)
    else:
        _element(parent, "CertificateSerial", record.serial)
        if subject[1]:
            _element(parent, *subject)  # type: ignore[arg-type]
    _element(parent, "CertificateStatus", record.status)
    if with_body:
        _element(parent, "CertificateBody",
                 "\n".join(textwrap.wrap(base64.b64encode(record.der or b"").decode(), 64)))
    if record.kind != "device" and record.role is not None:
        _element(parent, "CertificateRole", str(record.role))
    if record.usage:
        _element(parent, "CertificateUsage", record.usage)
    _element(parent, "ManufacturingFlag", "true" if record.manufacturing_flag else "false")


def _respond(root: ET.Element, status: int) -> Response:
    body = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + ET.tostring(root, encoding="unicode")
    return Response(body, status=status, content_type=XML_MEDIA_TYPE)


def _outcome(root_name: str, reference: str, status: int, message: str) -> ET.Element:
    root = ET.Element(root_name)
    _element(root, "ResponseCode", str(status))
    _element(root, "ResponseMessage", message)
    _element(root, "AuditReference", reference)
    return root


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
    return _respond(_outcome(root_name, reference, 401, f"Invalid request: {message}"), 401)


def _keyed_read(statement: Select[Any], parameters: dict[str, Any]) -> KeyedRead:
    """The certificates and the caller's API key, in one query (:meth:`RepositoryAccess.read_with_api_key`)."""
    return common.access().read_with_api_key(request.args.get("apikey"), statement, parameters,
                                             dccboxed_compatible=common.dccboxed_compatible())


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
        statement = by_subject_statement(column, int(common.settings().web_service["max_results"]))
        read = _keyed_read(statement, {"subject": eui.hex})
    except (InvalidRequest, RepositoryError) as error:
        return _refused(root_name, operation, reference, _message(error))
    if read.holder is None:
        return _refused(root_name, operation, reference, KEY_REFUSED, key_checked=True)
    records = [CertificateRecord.from_row(row, with_der=False) for row in read.rows]
    if not records:
        common.record_request(reference, read.holder, operation, 402, subject)
        return _respond(_outcome(root_name, reference, 402, "No certificates found"), 402)
    root = _outcome(root_name, reference, 200, "Success")
    for record in records:
        _fields(ET.SubElement(root, "Result"), record, with_body=False)
    common.record_request(reference, read.holder, operation, 200, f"{subject}: {len(records)}")
    return _respond(root, 200)


@blueprint.post("/retrievecertificate")
def retrieve_certificate() -> Response:
    reference = common.audit_reference()
    operation, root_name = "retrievecertificate", "CertificateDataResponse"
    try:
        fields = _parse("CertificateDataRequest")
        if set(fields) != {"CertificateSerial"}:
            raise InvalidRequest("give exactly one CertificateSerial")
        read = _keyed_read(by_serial_statement(), {"serial": normalised_serial(fields["CertificateSerial"])})
    except (InvalidRequest, RepositoryError) as error:
        return _refused(root_name, operation, reference, _message(error))
    if read.holder is None:
        return _refused(root_name, operation, reference, KEY_REFUSED, key_checked=True)
    if not read.rows:
        common.record_request(reference, read.holder, operation, 402, fields["CertificateSerial"])
        return _respond(_outcome(root_name, reference, 402, "Certificate not found"), 402)
    # Two issuers may in principle share a serial; the service answers one certificate: the first lodged.
    record = CertificateRecord.from_row(read.rows[0])
    root = _outcome(root_name, reference, 200, "Success")
    _fields(ET.SubElement(root, "CertificateResponse"), record, with_body=True)
    common.record_request(reference, read.holder, operation, 200, record.serial)
    return _respond(root, 200)


def _message(error: InvalidRequest | RepositoryError) -> str:
    return str(error) if isinstance(error, InvalidRequest) else error.message
