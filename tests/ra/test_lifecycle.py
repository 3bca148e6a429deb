"""Parties and people through the RAPP forms, over the JSON API: registration, declaration, SRO, ARO
nomination, verification, approval, Authorised Subscriber status, withdrawal, revocation."""

from __future__ import annotations

from typing import Any

from smki.ra import audit
from tests.ra.conftest import SUPPLIER_A_IS, Population, auth, org_csr_pem

P = "/api/v1/ra"


def ok(response, status: int = 200) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def approve(client, operator, submission_id: int, checks: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    if checks:
        ok(client.post(f"{P}/submissions/{submission_id}/verification", headers=auth(operator),
                       json={"checks": dict.fromkeys(checks, True)}))
    return ok(client.post(f"{P}/submissions/{submission_id}/approval", headers=auth(operator)))


def test_a_new_party_from_registration_to_its_first_certificate(client, population: Population) -> None:
    operator = population.operator
    registration = ok(client.post(f"{P}/forms/party_registration", json={
        "legal_name": "Zeta Gas Supply Ltd", "company_number": "01234567", "registered_address": "1 High St, Leeds",
        "party_category": "small_supplier", "user_roles": [{"role": "GS"}, {"role": "IS"}]}), 201)
    assert registration["status"] == "submitted"
    approved = approve(client, operator, registration["id"], ["company_checked"])
    party, user_ids = approved["result"]["organisation_id"], approved["result"]["user_ids"]
    assert set(user_ids) == {"GS", "IS"} and all(len(u) == 16 for u in user_ids.values())
    ok(client.post(f"{P}/parties/{party}/srept", headers=auth(operator), json={"passed": True}))

    declaration = ok(client.post(f"{P}/forms/director_declaration", json={
        "organisation_id": party, "name": "Dee Director", "email": "dee@zeta.example", "capacity": "director",
        "declaration": True}), 201)
    approve(client, operator, declaration["id"], ["identity_verified", "authority_checked"])
    nomination = ok(client.post(f"{P}/forms/sro_nomination", json={
        "organisation_id": party, "declaration_id": declaration["id"], "name": "Sam SRO",
        "email": "sam@zeta.example"}), 201)
    sro = approve(client, operator, nomination["id"], ["identity_verified"])["credentials"]["api_token"]
    sro_headers = {"Authorization": f"Bearer {sro}"}

    aro_form = ok(client.post(f"{P}/parties/{party}/aros", headers=sro_headers, json={
        "name": "Ari ARO", "email": "ari@zeta.example", "scopes": ["organisation"], "acts_for": [party]}), 202)
    # approval before verification of identity and screening is refused
    early = client.post(f"{P}/submissions/{aro_form['id']}/approval", headers=auth(operator))
    assert early.get_json()["code"] == "WF:FRM03"
    partial = client.post(f"{P}/submissions/{aro_form['id']}/verification", headers=auth(operator),
                          json={"checks": {"identity_verified": True}})
    assert partial.get_json()["code"] == "WF:FRM06"
    aro_approved = approve(client, operator, aro_form["id"], ["identity_verified", "screening_passed"])
    aro = {"Authorization": f"Bearer {aro_approved['credentials']['api_token']}"}
    assert "api_token" not in str(client.get(f"{P}/submissions/{aro_form['id']}", headers=sro_headers).get_json())

    # not yet an Authorised Subscriber: the CSR is refused, with the rule
    refused = client.post(f"{P}/csr/organisation", headers=aro, json={"csr": org_csr_pem(user_ids["GS"])})
    assert refused.get_json()["code"] == "IN:ORG02"
    application = ok(client.post(f"{P}/forms/authorised_subscriber_application", headers=sro_headers,
                                 json={"organisation_id": party, "policy": "organisation"}), 201)
    approve(client, operator, application["id"], ["srept_confirmed", "vetting_complete"])
    issued = ok(client.post(f"{P}/csr/organisation", headers=aro, json={"csr": org_csr_pem(user_ids["GS"])}), 201)
    assert issued["decision"]["rule"] == "org.role.supplier"
    download = client.get(issued["href"], headers=aro)
    assert download.status_code == 200 and download.data.startswith(b"-----BEGIN CERTIFICATE-----")

    # the SRO withdraws the ARO: at once, every credential is refused
    aros = ok(client.get(f"{P}/parties/{party}/aros", headers=sro_headers))["aros"]
    ok(client.post(f"{P}/parties/{party}/aros/{aros[0]['appointment_id']}/withdrawal", headers=sro_headers,
                   json={"reason": "moved to another role"}))
    after = client.get(issued["href"], headers=aro)
    assert after.status_code == 401 and after.get_json()["code"] == "AU:TOK03"


def test_every_bad_field_is_reported_at_once(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"{P}/forms/party_registration", json={
        "legal_name": "X", "company_number": "not a number", "party_category": "banker",
        "user_roles": [{"role": "ZZ", "user_id": "nope"}], "colour": "blue"})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "FM:FRM01"
    fields = {error["field"] for error in problem["errors"]}
    assert {"legal_name", "company_number", "party_category", "registered_address", "user_roles/0/role",
            "user_roles/0/user_id"} <= fields
    assert len(problem["errors"]) >= 7  # the unexpected 'colour' too


def test_a_manufacturer_can_be_recorded_but_never_authorised(client, population: Population) -> None:
    response = client.post(f"{P}/forms/authorised_subscriber_application", headers=auth(population.sro_a),
                           json={"organisation_id": population.manufacturer, "policy": "device",
                                 "user_security_assessment_passed": True, "dcc_gateway_connection": True})
    assert response.get_json()["code"] == "AZ:SRO02"  # the SRO of another Party
    # even an RA operator cannot make a manufacturer an Authorised Subscriber
    form = client.post(f"{P}/forms/party_registration", json={
        "legal_name": "Theta Meters", "company_number": "07654321", "registered_address": "2 Mill Lane, Derby",
        "party_category": "manufacturer", "user_roles": [{"role": "IS"}]})
    submitted = form.get_json()
    verified = client.post(f"{P}/submissions/{submitted['id']}/verification", headers=auth(population.operator),
                           json={"checks": {"company_checked": True}})
    assert verified.status_code == 200
    refused = client.post(f"{P}/submissions/{submitted['id']}/approval", headers=auth(population.operator))
    assert refused.get_json()["code"] == "IN:AS01"  # a non-Party holds no User Roles


def test_device_application_needs_vetting_fields(client, population: Population) -> None:
    response = client.post(f"{P}/forms/authorised_subscriber_application", headers=auth(population.sro_a),
                           json={"organisation_id": population.supplier_a, "policy": "device"})
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert fields == {"user_security_assessment_passed", "dcc_gateway_connection"}


def test_rejection_needs_a_reason_and_is_final(client, population: Population) -> None:
    form = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
        "name": "Rex Rejected", "email": "rex@alpha.example", "scopes": ["device"],
        "acts_for": [population.supplier_a]})
    submission = form.get_json()["id"]
    no_reason = client.post(f"{P}/submissions/{submission}/rejection", headers=auth(population.operator), json={})
    assert no_reason.status_code == 400 and no_reason.get_json()["code"] == "FM:API06"
    assert [error["field"] for error in no_reason.get_json()["errors"]] == ["reason"]
    blank = client.post(f"{P}/submissions/{submission}/rejection", headers=auth(population.operator),
                        json={"reason": "   "})
    assert blank.get_json()["code"] == "FM:FRM04"
    rejected = ok(client.post(f"{P}/submissions/{submission}/rejection", headers=auth(population.operator),
                              json={"reason": "screening not passed"}))
    assert rejected["status"] == "rejected" and rejected["reason"] == "screening not passed"
    again = client.post(f"{P}/submissions/{submission}/approval", headers=auth(population.operator))
    assert again.get_json()["code"] == "WF:FRM03"


def test_revocation_request(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    issued = ok(client.post(f"{P}/csr/organisation", headers=auth(population.aro_a),
                            json={"csr": org_csr_pem(SUPPLIER_A_IS)}), 201)
    other = client.post(f"{P}/forms/certificate_revocation_request", headers=auth(population.aro_b),
                        json={"serial": issued["serial"], "reason": "key_compromise"})
    assert other.get_json()["code"] == "AZ:ARO02"
    request = ok(client.post(f"{P}/forms/certificate_revocation_request", headers=auth(population.aro_a),
                             json={"serial": issued["serial"], "reason": "key_compromise"}), 201)
    approve(client, population.operator, request["id"], ["requester_verified"])
    decisions = ok(client.get(f"{P}/parties/{population.supplier_a}/decisions", headers=auth(population.aro_a)))
    assert decisions["decisions"][0]["status"] == "revoked"
    assert audit.verify(ra.database).intact


def test_openapi_documents_every_endpoint(client, app) -> None:  # type: ignore[no-untyped-def]
    document = ok(client.get(f"{P}/openapi.json"))
    assert document["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(P):
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            routes |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented
    assert "form_aro_nomination" in document["components"]["schemas"]


def test_forms_render_for_print(client, population: Population) -> None:  # type: ignore[no-untyped-def]
    blank = client.get(f"{P}/forms/aro_nomination/print")
    assert blank.status_code == 200 and b"ARO Nomination Form" in blank.data and b"Signed:" in blank.data
    form = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
        "name": "Pat Printed", "email": "pat@alpha.example", "scopes": ["device"], "acts_for": [population.supplier_a]})
    printed = client.get(f"{P}/submissions/{form.get_json()['id']}/print", headers=auth(population.sro_a))
    assert b"Pat Printed" in printed.data and b"submitted" in printed.data
