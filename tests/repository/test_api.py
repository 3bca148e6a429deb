"""The JSON API: search with cursors, retrieval, PEM and DER downloads, the OpenAPI document."""

from __future__ import annotations

from cryptography import x509


def auth(key):
    return {"X-API-Key": key}


def test_search_pages_through_results_with_next_links(client, api_key, repository, interop_devices):
    repository.lodge_many(interop_devices)
    serials, url = [], "/api/v1/repository/certificates?kind=device&usage=DS&limit=60"
    while url:
        body = client.get(url, headers=auth(api_key)).get_json()
        serials += [c["serial"] for c in body["certificates"]]
        url = body.get("links", {}).get("next")
    assert len(serials) == len(set(serials)) == 200


def test_search_by_device_id_and_status(client, api_key, repository, interop_devices):
    repository.lodge_many(interop_devices)
    body = client.get("/api/v1/repository/certificates?device_id=00-DB-12-34-56-78-90-A4&status=I",
                      headers=auth(api_key)).get_json()
    assert [c["device_id"] for c in body["certificates"]] == ["00-DB-12-34-56-78-90-A4"] * 2
    assert body["next_cursor"] is None


def test_bad_search_parameters_get_coded_problems(client, api_key):
    response = client.get("/api/v1/repository/certificates?status=Z", headers=auth(api_key))
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "RP:SRC4"
    response = client.get("/api/v1/repository/certificates?not_after_from=yesterday", headers=auth(api_key))
    assert response.get_json()["code"] == "RP:SRC6"


def test_api_key_is_required(client):
    response = client.get("/api/v1/repository/certificates")
    assert response.status_code == 401 and response.get_json()["code"] == "AU:KEY1"
    assert client.get("/api/v1/repository/certificates", query_string={"apikey": "wrong"}).status_code == 401


def test_certificate_record_and_downloads(client, api_key, repository, issue):
    record = repository.lodge(issue()).record

    body = client.get(f"/api/v1/repository/certificates/{record.serial.lower()}", headers=auth(api_key)).get_json()
    pem = client.get(body["links"]["pem"], headers=auth(api_key))
    der = client.get(body["links"]["der"], headers=auth(api_key))
    negotiated = client.get(f"/api/v1/repository/certificates/{record.serial}",
                            headers={**auth(api_key), "Accept": "application/pkix-cert"})

    assert body["serial"] == record.serial and body["subject_eui"] == "90-B3-D5-1F-30-01-00-00"
    assert body["status"] == "I" and body["status_text"] == "in use"
    assert pem.mimetype == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(pem.data) == x509.load_der_x509_certificate(record.der)
    assert der.mimetype == "application/pkix-cert" and der.data == record.der
    assert negotiated.mimetype == "application/pkix-cert" and negotiated.data == record.der


def test_unknown_certificate_is_404(client, api_key):
    response = client.get("/api/v1/repository/certificates/0102", headers=auth(api_key))
    assert response.status_code == 404 and response.get_json()["code"] == "RP:SER1"


def test_openapi_document_describes_every_route(client, app):
    document = client.get("/api/v1/repository/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    routes = {rule.rule.replace("<", "{").replace(">", "}").replace("int:", "").replace("any(crl, arl):name", "list")
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/repository/")}
    documented = set(document["paths"]) | {"/api/v1/repository/openapi.json"}
    assert routes <= documented, routes - documented
