"""The Appendix O web service with the request shapes Smart DCC's dccboxed-keystore client sends.

The client (``src/certificateSearch.ts``) builds its body with fast-xml-parser as
``<?xml version="1.0" encoding="utf-8"?><CertificateSearchRequest><CertificateSubjectName>..``, posts it
with ``content-type: application/xml`` and ``?apikey=u3bg9gt38htd0j2``, treats 402 as "nothing found",
401 as "invalid search parameters", and otherwise wants 200 with an ``application/xml`` content type.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from cryptography import x509

DCCBOXED_KEY = "u3bg9gt38htd0j2"
SEARCH = "/services/certificatesearch"
RETRIEVE = "/services/retrievecertificate"


def dcc_request(name: str, field: str, value: str) -> bytes:
    """Byte for byte what prepareRequest() in dccboxed-keystore produces."""
    return f'<?xml version="1.0" encoding="utf-8"?><{name}><{field}>{value}</{field}></{name}>'.encode()


def post(client, path, body, key):
    query = {"apikey": key} if key is not None else {}
    return client.post(path, data=body, query_string=query, headers={"content-type": "application/xml"})


def results(response) -> list[dict[str, str]]:
    root = ET.fromstring(response.data)
    return [{child.tag: (child.text or "") for child in result} for result in root.findall("Result")]


@pytest.fixture
def boxed(app):
    app.config["SMKI_DCCBOXED"] = True
    return app


@pytest.fixture
def populated(repository, interop_org, interop_devices, issue):
    repository.lodge_many(interop_org + interop_devices)
    sandbox = repository.lodge(issue("organisation", "90-B3-D5-1F-30-01-00-00", role="02")).record
    return sandbox


def test_search_by_organisation_subject_name_returns_every_certificate_of_that_eui(client, api_key, populated):
    response = post(client, SEARCH, dcc_request("CertificateSearchRequest", "CertificateSubjectName",
                                                "90-B3-D5-1F-30-01-00-00"), api_key)

    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    assert [c.tag for c in root][:3] == ["ResponseCode", "ResponseMessage", "AuditReference"]
    assert root.findtext("ResponseCode") == "200"
    found = results(response)
    assert len(found) == 13  # 12 DCC ZAZ1 certificates of the GITTESTSUPPLIER + the sandbox one
    assert populated.serial in {r["CertificateSerial"] for r in found}
    for result in found:
        assert next(iter(result)) == "CertificateSerial"
        assert result["CertificateSubjectName"] == "90-B3-D5-1F-30-01-00-00"
        assert result["CertificateRole"] == "2"  # decimal, as the client compares it
        assert result["CertificateUsage"] in ("DS", "KA")
        assert result["ManufacturingFlag"] == "false"
        assert "CertificateSubjectAltName" not in result


def test_search_by_device_id_returns_ds_and_ka_without_role(client, api_key, populated):
    response = post(client, SEARCH, dcc_request("CertificateSearchRequest", "CertificateSubjectAltName",
                                                "00-DB-12-34-56-78-90-A4"), api_key)

    assert response.status_code == 200
    found = results(response)
    assert sorted(r["CertificateUsage"] for r in found) == ["DS", "KA"]
    assert all(r["CertificateSubjectAltName"] == "00-DB-12-34-56-78-90-A4" for r in found)
    assert all("CertificateRole" not in r for r in found)


def test_retrieve_returns_the_certificate_body_the_client_turns_into_an_x509(client, api_key, populated,
                                                                             interop_devices):
    expected = x509.load_der_x509_certificate(interop_devices[7])
    serial = f"{expected.serial_number:032X}"

    response = post(client, RETRIEVE, dcc_request("CertificateDataRequest", "CertificateSerial", serial), api_key)

    assert response.status_code == 200 and response.mimetype == "application/xml"
    root = ET.fromstring(response.data)
    body = root.find("CertificateResponse")
    assert root.findtext("ResponseCode") == "200"
    assert body.findtext("CertificateSerial") == serial
    assert body.findtext("CertificateSubjectAltName")
    # the client wraps the body in PEM armour and hands it to node's X509Certificate
    pem = f"-----BEGIN CERTIFICATE-----\n{body.findtext('CertificateBody')}\n-----END CERTIFICATE-----"
    assert x509.load_pem_x509_certificate(pem.encode()) == expected
    assert all(len(line) <= 64 for line in body.findtext("CertificateBody").splitlines())


def test_retrieve_accepts_any_spelling_of_the_serial(client, api_key, populated):
    lower = populated.serial.lower()
    response = post(client, RETRIEVE, dcc_request("CertificateDataRequest", "CertificateSerial", lower), api_key)
    body = ET.fromstring(response.data).find("CertificateResponse")
    assert response.status_code == 200
    assert base64.b64decode(body.findtext("CertificateBody")) == populated.der
    assert body.findtext("CertificateRole") == "2"


def test_nothing_found_is_402_with_xml(client, api_key, populated):
    search = post(client, SEARCH, dcc_request("CertificateSearchRequest", "CertificateSubjectAltName",
                                              "11-22-33-44-55-66-77-88"), api_key)
    retrieve = post(client, RETRIEVE, dcc_request("CertificateDataRequest", "CertificateSerial", "1234"), api_key)

    for response, root in ((search, "CertificateSearchResponse"), (retrieve, "CertificateDataResponse")):
        assert response.status_code == 402
        assert response.mimetype == "application/xml"
        parsed = ET.fromstring(response.data)
        assert parsed.tag == root and parsed.findtext("ResponseCode") == "402"
        assert parsed.find("Result") is None and parsed.find("CertificateResponse") is None


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0" encoding="utf-8"?><CertificateSearchRequest></CertificateSearchRequest>',
    b"<CertificateSearchRequest><CertificateSubjectName>90-B3-D5-1F-30-01-00-00</CertificateSubjectName>"
    b"<CertificateSubjectAltName>00-DB-12-34-56-78-90-A4</CertificateSubjectAltName></CertificateSearchRequest>",
    b"<CertificateSearchRequest><CertificateSubjectName>not-an-eui</CertificateSubjectName></CertificateSearchRequest>",
    b"<CertificateSearchRequest><Colour>blue</Colour></CertificateSearchRequest>",
    b"<CertificateDataRequest><CertificateSerial>01</CertificateSerial></CertificateDataRequest>",
    b"<CertificateSearchRequest><CertificateSubjectName>90-B3",
    b"",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "90-B3-D5-1F-30-01-00-00">]>'
    b"<CertificateSearchRequest><CertificateSubjectName>&e;</CertificateSubjectName></CertificateSearchRequest>",
], ids=["none", "both", "bad-eui", "unknown-element", "wrong-root", "malformed", "empty", "dtd-entity"])
def test_invalid_search_parameters_are_401(client, api_key, populated, body):
    response = post(client, SEARCH, body, api_key)

    assert response.status_code == 401
    parsed = ET.fromstring(response.data)
    assert parsed.findtext("ResponseCode") == "401" and parsed.findtext("AuditReference")


def test_invalid_retrieve_parameters_are_401(client, api_key):
    for body in (dcc_request("CertificateDataRequest", "CertificateSerial", "xyz"),
                 dcc_request("CertificateDataRequest", "Serial", "01")):
        assert post(client, RETRIEVE, body, api_key).status_code == 401


def test_oversized_requests_are_refused_without_being_parsed(client, api_key):
    body = b"<CertificateSearchRequest>" + b" " * 70000 + b"</CertificateSearchRequest>"
    assert post(client, SEARCH, body, api_key).status_code == 401


def test_every_status_is_reported_as_its_code(client, api_key, repository, issue):
    eui = "90-B3-D5-1F-30-05-00-00"
    serials = {}
    for status in "PIN":
        serials[status] = repository.lodge(issue("organisation", eui), status=status).record.serial
    serials["R"] = repository.lodge(issue("organisation", eui)).record.serial
    repository.revoke(serials["R"], "keyCompromise", requested_by="dcc")
    expiring = repository.lodge(issue("organisation", eui)).record
    import datetime as dt

    repository.set_status(expiring.serial, "E", now=expiring.not_after + dt.timedelta(days=1))
    serials["E"] = expiring.serial

    response = post(client, SEARCH, dcc_request("CertificateSearchRequest", "CertificateSubjectName", eui), api_key)

    reported = {r["CertificateSerial"]: r["CertificateStatus"] for r in results(response)}
    assert reported == {serial: status for status, serial in serials.items()}


def test_missing_or_unknown_api_key_is_refused(client, populated):
    body = dcc_request("CertificateSearchRequest", "CertificateSubjectName", "90-B3-D5-1F-30-01-00-00")
    assert post(client, SEARCH, body, None).status_code == 401
    assert post(client, SEARCH, body, "not-a-key").status_code == 401


def test_dccboxed_default_key_only_in_compatibility_mode(app, client, populated):
    body = dcc_request("CertificateSearchRequest", "CertificateSubjectName", "90-B3-D5-1F-30-01-00-00")
    app.config["SMKI_DCCBOXED"] = False
    assert post(client, SEARCH, body, DCCBOXED_KEY).status_code == 401

    app.config["SMKI_DCCBOXED"] = True
    assert post(client, SEARCH, body, DCCBOXED_KEY).status_code == 200


def test_revoked_api_keys_stop_working(client, access, api_key, populated):
    body = dcc_request("CertificateSearchRequest", "CertificateSubjectName", "90-B3-D5-1F-30-01-00-00")
    assert post(client, SEARCH, body, api_key).status_code == 200
    access.revoke_all("party:TEST/aro:tester")
    assert post(client, SEARCH, body, api_key).status_code == 401


def test_each_request_is_logged_with_its_audit_reference(client, api_key, populated, instance):
    from sqlalchemy import select

    from repository.models import RepositoryRequestLog
    from repository.request_log import flush_all

    response = post(client, SEARCH, dcc_request("CertificateSearchRequest", "CertificateSubjectAltName",
                                                "11-22-33-44-55-66-77-88"), api_key)
    reference = ET.fromstring(response.data).findtext("AuditReference")
    flush_all()  # written in batches off the request path (tests/repository/test_request_log.py)
    with instance.database.session() as session:
        logged = session.scalars(select(RepositoryRequestLog)).one()
    assert (logged.audit_reference, logged.response_code, logged.holder) == (reference, 402, "party:TEST/aro:tester")
