"""What an answer said, read from its recorded body: the service status, the error code, the audit reference,
and for a CRL the serials it lists. Every interface of the sandbox answers in one of four shapes: a problem
document or JSON (RA, Repository JSON API), Appendix M XML (Status/BatchStatus, ErrorCode), Appendix O XML
(ResponseCode, AuditReference), or a portal page (the refusal's code in its alert)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509

TEXT_LIMIT = 65_536  # the matchers search the first 64 KiB of a body: the statuses and codes come first

_STATUS = re.compile(r"<(?:\w+:)?(?:BatchStatus|Status)>\s*([A-Z_]+)\s*<")
_ERROR_CODE = re.compile(r"<(?:\w+:)?ErrorCode>\s*([A-Z]{2}:[A-Za-z0-9]{1,7})\s*<")
_AUDIT = re.compile(r"<(?:\w+:)?(AuditReference|TransactionId|BatchId)>\s*([^<\s]{1,60})\s*<")
_RESPONSE_CODE = re.compile(r"<(?:\w+:)?ResponseCode>\s*([0-9]{3})\s*<")
_ALERT_CODE = re.compile(r'role="alert"[^>]*>.{0,400}?\b([A-Z]{2}:[A-Za-z0-9]{1,7})\b', re.DOTALL)
_PLAIN_CODE = re.compile(r"^([A-Z]{2}:[A-Za-z0-9]{1,7})\b")


@dataclass(frozen=True)
class Outcome:
    service_status: str | None
    error_code: str | None
    audit_reference: str | None
    crl_serials: frozenset[str]


def text_of(body: bytes) -> str:
    return body[:TEXT_LIMIT].decode("utf-8", "replace")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_outcome(document: Any) -> tuple[str | None, str | None]:
    """(error code, audit reference) of a JSON answer."""
    if not isinstance(document, dict):
        return None, None
    code = document.get("code") if isinstance(document.get("code"), str) else None
    decision = document.get("decision")
    if isinstance(decision, dict) and decision.get("id") is not None:
        return code, f"decision:{decision['id']}"
    if document.get("form") and document.get("id") is not None:
        return code, f"submission:{document['id']}"
    if isinstance(document.get("serial"), str):
        return code, f"serial:{document['serial']}"
    return code, None


def crl_serials(body: bytes) -> frozenset[str]:
    try:
        crl = x509.load_der_x509_crl(body)
    except ValueError:
        return frozenset()
    return frozenset(f"{entry.serial_number:X}" for entry in crl)


def read_outcome(content_type: str | None, body: bytes, http_status: int) -> Outcome:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/pkix-crl":
        return Outcome(None, None, None, crl_serials(body))
    text = text_of(body)
    if kind.endswith("json"):
        code, reference = _json_outcome(_json(text))
        return Outcome(None, code, reference, frozenset())
    if kind.endswith("xml"):
        status = _STATUS.search(text)
        error = _ERROR_CODE.search(text)
        audit = _AUDIT.search(text)
        response_code = _RESPONSE_CODE.search(text)
        return Outcome(status.group(1) if status else (response_code.group(1) if response_code else None),
                       error.group(1) if error else None,
                       f"{audit.group(1)}:{audit.group(2)}" if audit else None, frozenset())
    if kind == "text/html":
        alert = _ALERT_CODE.search(text) if http_status >= 400 or 'role="alert"' in text else None
        return Outcome(None, alert.group(1) if alert else None, None, frozenset())
    plain = _PLAIN_CODE.match(text.strip()) if http_status >= 400 else None
    return Outcome(None, plain.group(1) if plain else None, None, frozenset())
