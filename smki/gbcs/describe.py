"""A decoded message as plain data (JSON-ready) for people and tools: ``smki gbcs decode`` prints it."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from enum import Enum, Flag
from typing import Any

from cryptography import x509

from smki.core.eui64 import Eui64
from smki.gbcs.build import parse_dlms_date_time
from smki.gbcs.values import GeneralCiphering, GeneralSigning, GroupingHeader, KeyUsage, Message

_CERTIFICATE_FIELDS = frozenset({"certificate", "certification_path"})


def describe(message: Message) -> dict[str, Any]:
    if isinstance(message, GeneralCiphering):
        return {"apdu": "generalCiphering", "invocationCounter": message.invocation_counter,
                "mac": message.mac.hex().upper(), "content": describe(message.apdu)}
    if not isinstance(message, GeneralSigning):
        raise TypeError(f"{type(message).__name__} is not a GBCS message")
    return {"apdu": "generalSigning", "header": _header(message.header),
            "payloadKind": type(message.payload).__name__, "payload": _plain(message.payload),
            "lengthEncoding": message.length_encoding.value, "preCommand": message.pre_command,
            "signature": None if message.signature is None else message.signature.hex().upper()}


def _header(header: GroupingHeader) -> dict[str, Any]:
    moment = None if header.date_time is None else parse_dlms_date_time(header.date_time)
    return {"craFlag": header.cra_flag.name.lower(), "originatorCounter": header.originator_counter,
            "businessOriginator": header.business_originator.hex, "businessTarget": header.business_target.hex,
            "messageCode": f"0x{header.message_code:04X}",
            "dateTime": None if header.date_time is None else header.date_time.hex().upper(),
            "dateTimeUtc": None if moment is None else moment.isoformat()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _plain(value: Any, field: str = "") -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(item.name): _plain(getattr(value, item.name), item.name)
                for item in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(item, field) for item in value]
    if isinstance(value, bytes):
        return certificate_summary(value) if field in _CERTIFICATE_FIELDS else value.hex().upper()
    if isinstance(value, KeyUsage):
        return sorted(_camel(str(member.name).lower()) for member in KeyUsage if member in value)
    if isinstance(value, Flag | Enum):
        return _camel(str(value.name).lower())
    if isinstance(value, Eui64):
        return value.hex
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def certificate_summary(der: bytes) -> dict[str, Any]:
    summary: dict[str, Any] = {"sha256": hashlib.sha256(der).hexdigest(), "octets": len(der)}
    try:
        certificate = x509.load_der_x509_certificate(der)
        summary.update(subject=certificate.subject.rfc4514_string(), issuer=certificate.issuer.rfc4514_string(),
                       serial=f"{certificate.serial_number:x}",
                       notAfter=certificate.not_valid_after_utc.isoformat())
    except ValueError as error:
        summary["error"] = f"not readable as X.509: {error}"
    return summary
