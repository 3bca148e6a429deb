"""Property tests of the Device CSR XML services (SEC Appendix M): the hardened parser and schema check
(smki/devicecsr/xml.py, documents.py), and the ad hoc and batch routes through the Flask test client. Any
body, header or query gets a coded answer: an XSD-valid XML answer whose status is success or carries an
SEC-style ErrorCode, or a problem document with a code; never a 5xx."""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from smki.core.errors import CODE_PATTERN
from smki.devicecsr import documents, xml
from smki.devicecsr.policy import DeviceCsrPolicy
from tests.devicecsr.conftest import csr_b64, parse_answer, text

ADHOC = "/1.0/PortalCSRAdHoc/DeviceCertificateSigningRequest"
SUBMIT = "/1.0/PortalCSRBatch/SubmitCSRBatch"
POLL = "/1.0/PortalCSRBatch/CSRBatchResult"
ROOTS = ("DeviceCertificateSigningRequest", "SubmitCSRBatch", "SubmitCSRBatches", "CSRBatchResult", "r")
# Made once (each needs a key): valid CSRs for devices the stand-in gate does and does not know.
VALID_CSRS = (*(csr_b64(0x00DB000000009000 + n) for n in range(3)), csr_b64("00DB0000000000FF"))
# Route tests share one database across examples (fixtures are per test), which is what they assert about:
# answers, not stored state.
ROUTE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def coded(code: str | None) -> bool:
    return code is not None and bool(CODE_PATTERN.match(code)) and len(code) <= 10


# --- documents ---------------------------------------------------------------------------------------------

xml_text = st.text(max_size=40).filter(lambda t: all(c in "\t\n\r" or c >= " " for c in t)
                                        and not any(0xD800 <= ord(c) <= 0xDFFF or c in "\ufffe\uffff" for c in t))


@st.composite
def csr_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(("valid", "garbage-b64", "text", "pem", "white-space", "truncated")))
    valid = draw(st.sampled_from(VALID_CSRS))
    if kind == "valid":
        return valid
    if kind == "garbage-b64":
        return base64.b64encode(draw(st.binary(max_size=120))).decode()
    if kind == "text":
        return draw(xml_text)
    if kind == "pem":
        return f"-----BEGIN CERTIFICATE REQUEST-----\n{valid}\n-----END CERTIFICATE REQUEST-----"
    if kind == "white-space":
        at = draw(st.integers(0, len(valid)))
        return valid[:at] + draw(st.sampled_from((" ", "\n", "\r\n", "\t"))) + valid[at:]
    return valid[:draw(st.integers(0, len(valid)))]


@st.composite
def elements(draw: st.DrawFn, csr_tag: str) -> str:
    kind = draw(st.sampled_from(("version", "csr", "csr", "csr", "other", "comment", "cdata", "pi")))
    ident = draw(st.none() | xml_text | st.sampled_from(("a", "a", "b")))
    attribute = f" ID={quoteattr(ident)}" if ident is not None else ""
    if kind == "version":
        return f"<Version>{escape(draw(st.sampled_from(('1.0', '1.0', '2.0', ''))))}</Version>"
    if kind == "csr":
        return f"<{csr_tag}{attribute}>{escape(draw(csr_texts()))}</{csr_tag}>"
    if kind == "other":
        return f"<Other{attribute}>{escape(draw(xml_text))}</Other>"
    if kind == "comment":
        return f"<!--{draw(xml_text).replace('-', '')}-->"
    if kind == "cdata":
        return f"<![CDATA[{draw(xml_text).replace(']]>', '')}]]>"
    return f"<?pi {draw(xml_text).replace('?>', '')}?>"


@st.composite
def documents_for(draw: st.DrawFn, root: str) -> bytes:
    """Mostly well-formed documents near the schema: right or wrong root, namespace, ID, children and
    encoding declaration; sometimes with a DOCTYPE, and sometimes with octets mutated afterwards."""
    name = draw(st.sampled_from((root, root, *ROOTS)))
    namespace = draw(st.sampled_from((xml.NAMESPACE, xml.NAMESPACE, "urn:example:other", None)))
    ident = draw(st.none() | xml_text | st.just("req-1"))
    csr_tag = "CertificateSigningRequest" if root == "DeviceCertificateSigningRequest" else "DeviceCSR"
    children = "".join(draw(st.lists(elements(csr_tag), max_size=5)))
    if draw(st.booleans()):
        children = "<Version>1.0</Version>" + children
    encoding = draw(st.sampled_from((None, "UTF-8", "utf-8", "ISO-8859-1", "UTF-16", "x-unknown-encoding")))
    declaration = "" if encoding is None and draw(st.booleans()) else (
        '<?xml version="1.0"' + (f' encoding="{encoding}"' if encoding else "") + "?>")
    doctype = draw(st.sampled_from(("", "", "", f"<!DOCTYPE {name}>")))
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    id_attribute = f" ID={quoteattr(ident)}" if ident is not None else ""
    document = f"{declaration}{doctype}<{name}{xmlns}{id_attribute}>{children}</{name}>"
    codec = encoding if encoding in ("ISO-8859-1", "UTF-16") and draw(st.booleans()) else "utf-8"
    data = bytearray(document.encode(codec, "replace"))
    for _ in range(draw(st.integers(0, 2))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[at] = draw(st.integers(0, 255))
        else:
            del data[at:]
    return bytes(data)


bodies = st.binary(max_size=300)


@pytest.fixture(scope="module")
def device_csr_policy() -> DeviceCsrPolicy:
    from smki.core.config import DEFAULT_POLICIES_DIR
    from smki.devicecsr.policy import load_device_csr_policy

    return load_device_csr_policy(DEFAULT_POLICIES_DIR)


@settings(max_examples=200, deadline=None)
@given(data=bodies | documents_for("DeviceCertificateSigningRequest"))
def test_the_ad_hoc_parser_answers_an_element_or_its_code(data):
    try:
        root = xml.parse(data, max_bytes=65536, root="DeviceCertificateSigningRequest", code="FM:AH1")
        xml.validate(root, "FM:AH1")
    except xml.XmlRejected as rejected:
        assert rejected.code == "FM:AH1" and rejected.text.strip()
        return
    assert root.tag == xml.tag("DeviceCertificateSigningRequest")
    assert xml.BASE64_DER.fullmatch(root.findtext(xml.tag("CertificateSigningRequest")) or "")


@settings(max_examples=200, deadline=None)
@given(data=bodies | documents_for("SubmitCSRBatch"))
def test_a_batch_document_is_a_submission_or_a_format_error(device_csr_policy, data):
    try:
        submission = documents.check_batch_xml(data, device_csr_policy)
    except xml.XmlRejected as rejected:
        assert rejected.code in (documents.FM_INVALID, documents.FM_TOO_MANY) and rejected.text.strip()
        return
    refs = [entry.ref for entry in submission.entries]
    assert submission.entries and len(set(refs)) == len(refs) and all(refs)
    assert all(xml.BASE64_DER.fullmatch(entry.csr) for entry in submission.entries)


# --- the routes -----------------------------------------------------------------------------------------------

callers = st.sampled_from(("supplier", "other", "network", "outsider")) | st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
content_types = st.sampled_from(("application/xml", "text/xml", "application/json", "", "text/xml; charset=bogus"))


def assert_coded_xml_answer(response, statuses: set[str]) -> etree._Element:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, (response.status_code, response.data[:500])
    answer = parse_answer(response.data)  # against the published XSD
    status = text(answer, "{}Status") or text(answer, "{}BatchStatus")
    code = text(answer, "{}Error/{}ErrorCode")
    # A status from the service's set, or (a poll refused outright) none and an Error
    assert status in statuses or (status is None and code is not None), status
    assert status in ("SUCCESS", "PENDING", "COMPLETED") or coded(code), (status, code)
    if code is not None:
        assert coded(code) and (text(answer, "{}Error/{}ErrorText") or "").strip()
    return answer


@ROUTE_SETTINGS
@given(body=bodies | documents_for("DeviceCertificateSigningRequest"), caller=callers, content_type=content_types)
def test_the_ad_hoc_service_answers_every_request_with_a_code(client, body, caller, content_type):
    response = client.post(ADHOC, data=body, headers={"X-SMKI-Client": caller, "Content-Type": content_type})
    assert_coded_xml_answer(response, {"SUCCESS", "UNKNOWN_DEVICE", "INELIGIBLE", "ISSUANCE_ANOMALY",
                                       "CSR_ERROR", "CA_ERROR", "FORMAT_ERROR", "WORKFLOW_ERROR"})


@ROUTE_SETTINGS
@given(body=bodies | documents_for("SubmitCSRBatch"), caller=callers, content_type=content_types)
def test_the_batch_service_answers_every_submission_with_a_code(client, body, caller, content_type):
    response = client.post(SUBMIT, data=body, headers={"X-SMKI-Client": caller, "Content-Type": content_type})
    answer = assert_coded_xml_answer(response, {"PENDING", "FORMAT_ERROR", "WORKFLOW_ERROR"})
    if text(answer, "{}BatchStatus") == "PENDING":
        assert int(text(answer, "{}BatchId") or 0) > 0


@ROUTE_SETTINGS
@given(batch_id=st.text(max_size=14) | st.integers(-10, 10**20).map(str)
       | st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=3), caller=callers)
def test_the_batch_poll_answers_every_batch_id_with_a_code(client, batch_id, caller):
    response = client.get(POLL, query_string={"BatchId": batch_id}, headers={"X-SMKI-Client": caller})
    assert_coded_xml_answer(response, {"PENDING", "REJECTED", "PARSING", "QUEUED", "PROCESSING", "PAUSED",
                                       "COMPLETED", "TAMPERED", "FORMAT_ERROR", "WORKFLOW_ERROR"})


def test_a_batch_id_of_superscript_digits_is_an_unknown_batch_not_a_500(client):
    response = client.get(POLL, query_string={"BatchId": "²"}, headers={"X-SMKI-Client": "supplier"})
    answer = assert_coded_xml_answer(response, set())
    assert text(answer, "{}Error/{}ErrorCode") == documents.FM_UNKNOWN_BATCH


def test_a_batch_id_beyond_the_database_integer_is_an_unknown_batch_not_a_500(client):
    response = client.get(POLL, query_string={"BatchId": "2147483648"}, headers={"X-SMKI-Client": "supplier"})
    answer = assert_coded_xml_answer(response, set())
    assert text(answer, "{}Error/{}ErrorCode") == documents.FM_UNKNOWN_BATCH


@ROUTE_SETTINGS
@given(version=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                             exclude_characters="/?#%"), min_size=1, max_size=8))
def test_an_interface_version_not_served_is_a_coded_404(client, version):
    assume(version not in ("1.0", ".", ".."))
    response = client.post(f"/{version}/PortalCSRAdHoc/DeviceCertificateSigningRequest", data=b"<x/>",
                           headers={"X-SMKI-Client": "supplier", "Content-Type": "application/xml"})
    assert response.status_code == 404
    assert coded(response.get_json()["code"])
