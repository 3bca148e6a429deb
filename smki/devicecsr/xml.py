"""Hardened XML for the Device CSR web services: parse without entities, DTDs or network, within a
byte limit, check the namespace, validate against the project's XSD, and render the answers.

Answers are built as text with every value escaped, because a 50,000-certificate result is far
cheaper to stream that way than to build as a tree; the tests validate them against the same XSD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

NAMESPACE = "urn:smki-sandbox:device-csr:1.0"
VERSION = "1.0"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "device-csr-1.0.xsd"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


@dataclass(frozen=True)
class XmlRejected(Exception):
    """The document cannot be accepted; ``code`` is the FM: code to answer with."""

    code: str
    text: str


_NO_DTD = "the request carries a DOCTYPE; document type declarations and entities are not accepted."


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD loading, no network, no huge-tree relaxation of libxml2's limits.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_pis=True, collect_ids=False)


@cache
def schema() -> etree.XMLSchema:
    """The project's XSD exactly as published: what the tests check every answer against."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), _parser()))


# libxml2 evaluates the Base64Der pattern facet with its automaton at ~25 us per CSR, more than a
# second for a 50,000-CSR batch. Requests are therefore validated against the same XSD with that one
# facet (and the ID uniqueness constraint, checked beforehand in Python with a better message) taken
# out, and the facet's own pattern is applied by Python's regex engine to every Base64Der value.
BASE64_DER = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_PATTERN_FACET = '<xs:pattern value="[A-Za-z0-9+/]+={0,2}"/>'
_UNIQUE = re.compile(r"<xs:unique .*?</xs:unique>", re.S)
BASE64_DER_ELEMENTS = ("DeviceCSR", "CertificateSigningRequest")


@cache
def request_schema() -> etree.XMLSchema:
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    if text.count(_PATTERN_FACET) != 1 or len(_UNIQUE.findall(text)) != 1:
        raise RuntimeError(f"{SCHEMA_PATH.name}: the Base64Der pattern or the ID uniqueness constraint moved")
    fast = _UNIQUE.sub("", text.replace(_PATTERN_FACET, ""))
    return etree.XMLSchema(etree.fromstring(fast.encode(), _parser()))


def parse(data: bytes, *, max_bytes: int, root: str, code: str) -> etree._Element:
    """Parse ``data`` as a document whose root is ``root`` in our namespace, or raise XmlRejected."""
    if len(data) > max_bytes:
        raise XmlRejected(code, f"the request is {len(data)} bytes; at most {max_bytes} are accepted.")
    if not data.strip():
        raise XmlRejected(code, "the request body is empty; send the XML document.")
    if b"<!DOCTYPE" in data:  # refused before libxml2 sees a single entity declaration
        raise XmlRejected(code, _NO_DTD)
    try:
        tree = etree.fromstring(data, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(code, f"the request is not well-formed XML ({exc.msg}).") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejected(code, _NO_DTD)
    element = tree.getroot()
    if element.tag != tag(root):
        found = etree.QName(element)
        if found.localname == root:
            raise XmlRejected(code, f"the root element {root} is in namespace {found.namespace!r}; "
                              f"it must be in {NAMESPACE!r}.")
        raise XmlRejected(code, f"the root element is {found.localname!r}; this service takes {root} "
                          f"in namespace {NAMESPACE!r}.")
    return element


def validate(element: etree._Element, code: str) -> None:
    checker = request_schema()
    if not checker.validate(element):
        error = checker.error_log.last_error
        where = f" (line {error.line})" if error and error.line else ""
        message = error.message if error else "the document does not match the schema"
        raise XmlRejected(code, f"the request does not match the schema{where}: {message}")
    match = BASE64_DER.fullmatch
    for child in element.iter(*(tag(name) for name in BASE64_DER_ELEMENTS)):
        if not match(child.text or ""):
            where = f" (line {child.sourceline})" if child.sourceline else ""
            raise XmlRejected(code, f"the request does not match the schema{where}: {etree.QName(child).localname} "
                              "must be base64 DER without PEM armour or white space.")


# --- answers ---------------------------------------------------------------------------------------

def _error(code: str, text: str) -> str:
    return f"<Error><ErrorCode>{escape(code)}</ErrorCode><ErrorText>{escape(text)}</ErrorText></Error>"


def _id(value: str | None) -> str:
    return f" ID={quoteattr(value)}" if value else ""


def adhoc_response(*, request_id: str | None, build: str, transaction_id: int, status: str,
                   certificate_b64: str | None = None, code: str | None = None, text: str | None = None) -> bytes:
    outcome = (f"<Certificate>{certificate_b64}</Certificate>" if certificate_b64
               else _error(code or "CA:E500", text or ""))
    return (f'{XML_DECLARATION}<DeviceCertificateSigningResponse xmlns="{NAMESPACE}"{_id(request_id)}>'
            f"<Version>{VERSION}</Version><Build>{escape(build)}</Build>"
            f"<TransactionId>{transaction_id}</TransactionId><Status>{status}</Status>{outcome}"
            "</DeviceCertificateSigningResponse>").encode()


def submit_status(*, reference: str | None, status: str, batch_id: int | None = None,
                  code: str | None = None, text: str | None = None) -> bytes:
    outcome = f"<BatchId>{batch_id}</BatchId>" if batch_id is not None else _error(code or "FM:AA1", text or "")
    return (f'{XML_DECLARATION}<SubmitCSRBatchStatus xmlns="{NAMESPACE}"{_id(reference)}>'
            f"<Version>{VERSION}</Version><BatchStatus>{status}</BatchStatus>{outcome}"
            "</SubmitCSRBatchStatus>").encode()


def batch_result_error(code: str, text: str) -> bytes:
    return (f'{XML_DECLARATION}<CSRBatchResult xmlns="{NAMESPACE}"><Version>{VERSION}</Version>'
            f"{_error(code, text)}</CSRBatchResult>").encode()


@dataclass(frozen=True)
class CsrResult:
    csr_ref: str
    status: str
    certificate_b64: str | None
    code: str | None
    text: str | None


def batch_result(batch_id: int, status: str, results: Iterable[CsrResult],
                 error: tuple[str, str] | None = None) -> Iterator[bytes]:
    """The poll answer, streamed: a header, one element per CSR, a footer."""
    head = (f'{XML_DECLARATION}<CSRBatchResult xmlns="{NAMESPACE}"><Version>{VERSION}</Version>'
            f"<BatchId>{batch_id}</BatchId><BatchStatus>{status}</BatchStatus>")
    if error:
        head += _error(*error)
    yield head.encode()
    part: list[str] = []
    for result in results:
        outcome = (f"<Certificate>{result.certificate_b64}</Certificate>" if result.certificate_b64
                   else _error(result.code or "CA:E500", result.text or ""))
        part.append(f"<DeviceCertificate ID={quoteattr(result.csr_ref)}><Status>{result.status}</Status>"
                    f"{outcome}</DeviceCertificate>")
        if len(part) >= 1000:
            yield "".join(part).encode()
            part = []
    yield ("".join(part) + "</CSRBatchResult>").encode()
