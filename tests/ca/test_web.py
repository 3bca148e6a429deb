"""The CA's web surface: health, the CA certificates, and errors as problem+json without stack traces."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from smki.core.problem import PROBLEM_JSON
from smki.instance import Instance
from smki.web import create_app


@pytest.fixture
def app(instance: Instance):  # type: ignore[no-untyped-def]
    application = create_app(instance)

    @application.get("/test-only/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail: /srv/keys/root-oca.key.pem")

    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_the_four_ca_certificates_are_listed_with_their_serials(client, instance):
    response = client.get("/api/v1/ca/certificates")
    assert response.status_code == 200
    listed = response.get_json()["certificates"]
    assert [c["name"] for c in listed] == ["root_oca", "issuing_oca", "root_dca", "issuing_dca"]
    for entry in listed:
        certificate = instance.hierarchy.certificate(entry["name"])
        assert entry["serial"] == f"{certificate.serial_number:032X}"
        assert entry["subject"] == certificate.subject.rfc4514_string()
        pem = client.get(entry["href"])
        assert pem.status_code == 200
        assert x509.load_pem_x509_certificate(pem.data) == certificate
        assert pem.data == certificate.public_bytes(Encoding.PEM)


def test_an_unknown_ca_name_is_a_coded_problem(client):
    response = client.get("/api/v1/ca/certificates/Z1")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["code"] == "FM:CA01" and body["status"] == 400
    assert "root_oca" in body["detail"]


def test_an_unknown_path_is_a_problem_too(client):
    response = client.get("/api/v1/ca/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["status"] == 404


def test_an_unexpected_failure_is_a_500_problem_without_the_stack_trace(client, app, caplog):
    response = client.get("/test-only/boom")

    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == 500 and body["code"] == "CA:E500"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret internal detail" not in text and "RuntimeError" not in text
    # the operator still gets the trace, in the log
    assert any("secret internal detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)
