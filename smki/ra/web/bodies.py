"""The JSON bodies of the RA's API: one JSON Schema per route, used both to check every request and to
describe it in the OpenAPI document (:mod:`smki.ra.web.openapi`), so the two cannot disagree.

A body that is not JSON, or not a JSON object, is refused with ``FM:API01``; a body with a missing field, an
unknown field, or a field of the wrong type or value with ``FM:API06``, naming every bad field at once
(``errors``). RAPP forms are checked against their own schemas in ``rapp_forms/`` (``FM:FRM01``).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request

from smki.core.bounded import DATABASE_INTEGER_MAX
from smki.core.errors import Finding, SmkiError
from smki.ra.forms import FormDefinition, schema_findings

NOT_A_JSON_OBJECT = "FM:API01"
BODY_INVALID = "FM:API06"

INTEGRAL_LIMIT = 2**64  # past this a whole number stays a float: no field takes one, and 1e999999 stays cheap
RA_NUMBER = {"type": "integer", "minimum": 1, "maximum": DATABASE_INTEGER_MAX}
REASON = {"type": "string", "minLength": 3, "maxLength": 500}
CSR = {"type": "string", "minLength": 1, "maxLength": 65536,
       "description": "PKCS#10 as PEM (either header), base64 or base64 lines"}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, "required": list(required)}


# route body name -> JSON Schema (the OpenAPI document lists each under components/schemas as body_<name>)
BODIES: dict[str, dict[str, Any]] = {
    "organisation_csr": _object({"csr": CSR}, ("csr",)),
    "device_csr": _object({
        "csr": CSR,
        "subscriber": {**RA_NUMBER, "description": "the Authorised Subscriber of record (default: the ARO's Party)"},
        "manufacturer": {**RA_NUMBER, "description": "the manufacturer submitted for (sets the ManufacturingFlag)"},
    }, ("csr",)),
    "certificate_rejection": _object({"reason": {**REASON, "description": "why the certificate does not match "
                                                                          "the CSR"}}),
    "aro_withdrawal": _object({"reason": {**REASON, "description": "default: withdrawn by the SRO"}}),
    "verification": _object({"checks": {
        "type": "object", "maxProperties": 32, "propertyNames": {"maxLength": 64},
        "additionalProperties": {"type": "boolean"},
        "description": "each of the form's verification checks, confirmed with true"}}),
    "rejection": _object({"reason": {**REASON, "description": "told to the submitter"}}, ("reason",)),
    "srept": _object({"passed": {"type": "boolean", "description": "whether the Party passed SREPT"}}, ("passed",)),
    "none": _object({}),  # the route takes no fields; an empty body or {} is accepted
}


def form_body(form: FormDefinition, from_path: tuple[str, ...]) -> dict[str, Any]:
    """A form's schema without the fields a route takes from its path (an ARO nomination's Party)."""
    schema = dict(form.schema)
    schema["properties"] = {k: v for k, v in form.schema.get("properties", {}).items() if k not in from_path}
    schema["required"] = [k for k in form.schema.get("required", []) if k not in from_path]
    return schema


def unstorable_text(data: Any) -> list[Finding]:
    """Strings no database column can hold: a NUL character, or half of a UTF-16 surrogate pair (which
    JSON's \\u escapes can express and UTF-8 cannot)."""
    findings = []
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}/{key}" if where else str(key)
                if _unstorable(key):
                    findings.append(Finding(BODY_INVALID, "a field name holds a NUL or unpaired surrogate "
                                            "character", field=where or None))
                else:
                    pending.append((path, item))
        elif isinstance(value, list):
            pending.extend((f"{where}/{index}" if where else str(index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and _unstorable(value):
            findings.append(Finding(BODY_INVALID, f"{where}: text may not hold a NUL or unpaired surrogate "
                                    "character", field=where or None))
    return sorted(findings, key=lambda finding: finding.field or "")


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _number(text: str) -> int | float:
    """A JSON number with a fractional point or an exponent. JSON Schema counts 1.0 and 1e3 as integers;
    they are read as the ints they are, so that what the schema accepts reaches the database as an integer."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return float(text)
    if value.is_finite() and value == value.to_integral_value() and abs(value) <= INTEGRAL_LIMIT:
        return int(value)
    return float(text)


def json_object() -> dict[str, Any]:
    """The request body as a JSON object; an absent body is ``{}``. Refuses (``FM:API01``) a body that is
    not JSON or not an object, and (``FM:API06``) text no database can store."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if not request.is_json:
        raise SmkiError(NOT_A_JSON_OBJECT, "send the request body as a JSON object with Content-Type: "
                        "application/json.")
    try:
        data = json.loads(raw, parse_float=_number)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than any request needs
        raise SmkiError(NOT_A_JSON_OBJECT, "the request body is not valid JSON (UTF-8); send a JSON object.") from exc
    if not isinstance(data, dict):
        raise SmkiError(NOT_A_JSON_OBJECT, f"the request body must be a JSON object of fields, not {_kind(data)}.")
    findings = unstorable_text(data)
    if findings:
        raise SmkiError(BODY_INVALID, f"{len(findings)} field(s) of the request body hold text that cannot be "
                        "stored; correct them all and send again.", details=findings)
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def _named(findings: list[Finding], shown: int = 10) -> str:
    fields = sorted({finding.field or "the body" for finding in findings})
    return ", ".join(fields[:shown]) + (f" and {len(fields) - shown} more" if len(fields) > shown else "")


def checked(schema: dict[str, Any], data: dict[str, Any], code: str = BODY_INVALID) -> dict[str, Any]:
    """``data`` if it matches ``schema``; else ``code`` (``FM:API06``) naming every bad field."""
    findings = schema_findings(schema, data, code)
    if findings:
        raise SmkiError(code, f"{len(findings)} field(s) of the request body are invalid "
                        f"({_named(findings)}); correct them all and send again.", details=findings)
    return data


def body(name: str) -> dict[str, Any]:
    """The request's JSON body, checked against the route's schema ``BODIES[name]``."""
    return checked(BODIES[name], json_object())
