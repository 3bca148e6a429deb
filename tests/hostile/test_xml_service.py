"""The Appendix O XML services (certificate search and retrieve) given arbitrary bytes, arbitrary XML and
every encoding declaration Python knows: every answer is one of the service's coded answers (200, 401,
402) in its own XML form, with an AuditReference, and never a 5xx (issue 8 items 5 and 15)."""

from __future__ import annotations

import encodings.aliases
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from defusedxml import ElementTree as SafeET
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from repository.access import RepositoryAccess
from repository.request_log import flush_all
from repository.store import CertificateRepository
from smki.core.eui64 import Eui64
from smki.csrgen import organisation_csr
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.web import create_app

SERVICES = {"/services/certificatesearch": "CertificateSearchResponse",
            "/services/retrievecertificate": "CertificateDataResponse"}
CODED = {200, 401, 402}
ELEMENT_NAMES = ["CertificateSearchRequest", "CertificateDataRequest", "CertificateSubjectName",
                 "CertificateSubjectAltName", "CertificateSerial", "x", "Result"]
EUI = "90-B3-D5-1F-30-01-00-00"
FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def service(instance: Instance) -> Iterator[tuple[FlaskClient, str]]:
    app: Flask = create_app(instance)
    key = RepositoryAccess(instance.database).issue_api_key("party:FUZZ/aro:fuzz")
    # a certificate to find, so the 200 answers are exercised too
    issued = IssuanceService(instance.ca, instance.database, instance.policies).issue_from_csr(
        organisation_csr(ec.generate_private_key(ec.SECP256R1()), "02", Eui64.parse(EUI), "digitalSignature")
        .public_bytes(Encoding.PEM), channel="operator", requested_by="test")
    CertificateRepository(instance.database).lodge(issued.der)
    yield app.test_client(), key
    flush_all()  # the request log's waiting rows, while the test's database still exists


def check_coded(path: str, response: TestResponse) -> None:
    status = response.status_code
    assert status in CODED, (path, status, response.get_data()[:300])
    assert response.mimetype == "application/xml"
    root = SafeET.fromstring(response.get_data())
    assert root.tag == SERVICES[path]
    assert root.findtext("ResponseCode") == str(status)
    assert root.findtext("AuditReference")


def post(client: FlaskClient, path: str, body: bytes, key: str | None) -> TestResponse:
    query = {"apikey": key} if key is not None else {}
    return client.post(path, query_string=query, data=body, content_type="application/xml")


ENCODING_NAMES = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
                        | {"utf-8", "UTF-16", "utf-32", "x-unknown", "foo", "", " ", "utf-8\x00", "ebcdic"})


@pytest.mark.parametrize("path", sorted(SERVICES))
def test_every_encoding_declaration_gets_a_coded_answer(service: tuple[FlaskClient, str], path: str) -> None:
    client, key = service
    for name in ENCODING_NAMES:
        body = (f'<?xml version="1.0" encoding="{name}"?><CertificateSearchRequest><CertificateSubjectName>'
                f'{EUI}</CertificateSubjectName></CertificateSearchRequest>').encode("utf-8", "surrogatepass")
        check_coded(path, post(client, path, body, key))


def test_the_reported_unknown_encoding_is_refused_as_invalid(service: tuple[FlaskClient, str]) -> None:
    client, key = service
    body = (b'<?xml version="1.0" encoding="x-unknown"?><CertificateSearchRequest><CertificateSubjectName>'
            + EUI.encode() + b'</CertificateSubjectName></CertificateSearchRequest>')
    response = post(client, "/services/certificatesearch", body, key)
    check_coded("/services/certificatesearch", response)
    assert response.status_code == 401
    assert "encoding" in (SafeET.fromstring(response.get_data()).findtext("ResponseMessage") or "")


@FUZZ
@given(path=st.sampled_from(sorted(SERVICES)), body=st.binary(max_size=2048),
       key_given=st.sampled_from(["valid", "none", "random"]), random_key=st.text(max_size=40))
def test_arbitrary_bytes_get_a_coded_answer(service: tuple[FlaskClient, str], path: str, body: bytes,
                                            key_given: str, random_key: str) -> None:
    client, key = service
    chosen = {"valid": key, "none": None, "random": random_key}[key_given]
    check_coded(path, post(client, path, body, chosen))


def xml_documents() -> st.SearchStrategy[bytes]:
    child = st.tuples(st.sampled_from(ELEMENT_NAMES), st.one_of(st.just(EUI), st.text(max_size=40)))

    def build(root_name: str, children: list[tuple[str, str]], declaration: str) -> bytes:
        root = ET.Element(root_name)
        for name, text in children:
            ET.SubElement(root, name).text = text
        return declaration.encode() + ET.tostring(root, encoding="unicode").encode("utf-8", "surrogatepass")

    return st.builds(build, st.sampled_from(ELEMENT_NAMES), st.lists(child, max_size=4),
                     st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>',
                                      '<?xml version="1.1" encoding="latin-1"?>']))


@FUZZ
@given(path=st.sampled_from(sorted(SERVICES)), body=xml_documents())
def test_arbitrary_xml_gets_a_coded_answer(service: tuple[FlaskClient, str], path: str, body: bytes) -> None:
    client, key = service
    check_coded(path, post(client, path, body, key))
