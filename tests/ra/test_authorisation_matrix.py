"""The authorisation matrix: every RA endpoint against every kind of caller (anonymous, a withdrawn ARO, an
ARO of another Party, an SRO who is not an ARO, a manufacturer, an ARO scoped to the wrong policy, an RA
operator, and the correct ARO). Only the right caller succeeds: the correct ARO for the ARO endpoints, the
Party's SRO for the SRO endpoints, an RA operator for the verification queue, anyone for the public form
schemas. Every refusal is application/problem+json with its own code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from smki.ra.forms import FormService
from tests.ra.conftest import SUPPLIER_A_IS, Population, auth, device_csr_pem, org_csr_pem

CALLERS = ("anonymous", "withdrawn_aro", "aro_of_another_party", "sro_not_aro", "manufacturer", "wrong_scope",
           "operator", "correct")
ARO_REFUSALS = {"anonymous": "AU:TOK01", "withdrawn_aro": "AU:TOK03", "sro_not_aro": "AZ:ARO01",
                "manufacturer": "AZ:ORG01", "wrong_scope": "AZ:ARO03", "operator": "AZ:ARO01"}
SRO_REFUSALS = {"anonymous": "AU:TOK01", "withdrawn_aro": "AU:TOK03", "aro_of_another_party": "AZ:SRO01",
                "sro_not_aro": None, "manufacturer": "AZ:ORG01", "wrong_scope": "AZ:SRO01", "operator": "AZ:SRO01",
                "correct": "AZ:SRO01"}
OPERATOR_REFUSALS = {"anonymous": "AU:TOK01", "withdrawn_aro": "AU:TOK03", "aro_of_another_party": "AZ:OPR01",
                     "sro_not_aro": "AZ:OPR01", "manufacturer": "AZ:OPR01", "wrong_scope": "AZ:OPR01",
                     "operator": None, "correct": "AZ:OPR01"}
SUBMITTER_REFUSALS = {"anonymous": "AU:TOK01", "withdrawn_aro": "AU:TOK03", "aro_of_another_party": "AZ:RA01",
                      "sro_not_aro": None, "manufacturer": "AZ:RA01", "wrong_scope": "AZ:RA01", "operator": None,
                      "correct": "AZ:RA01"}
PUBLIC = dict.fromkeys(CALLERS)


@dataclass
class Case:
    method: str
    rule: str                                              # the Flask URL rule this case covers
    path: Callable[[dict[str, Any]], str]
    expected: dict[str, str | None]                        # caller -> refusal code, None = succeeds
    body: Callable[[dict[str, Any]], Any] | None = None
    wrong_scope: str = "aro_a_device_only"
    headers: dict[str, str] = field(default_factory=dict)


def aro(other_party_code: str) -> dict[str, str | None]:
    return {**ARO_REFUSALS, "aro_of_another_party": other_party_code, "correct": None}


P = "/api/v1/ra"
CASES = [
    Case("post", P + "/csr/organisation", lambda c: P + "/csr/organisation", aro("IN:ORG01"),
         lambda c: {"csr": org_csr_pem(SUPPLIER_A_IS)}),
    Case("post", P + "/csr/device", lambda c: P + "/csr/device", aro("IN:DEV07"),
         lambda c: {"csr": device_csr_pem("00DB12000000A001"), "subscriber": c["supplier_a"]},
         wrong_scope="aro_a_org_only"),
    Case("get", P + "/certificates/<serial>", lambda c: f"{P}/certificates/{c['serial']}", aro("AZ:ARO02")),
    Case("post", P + "/certificates/<serial>/rejection", lambda c: f"{P}/certificates/{c['serial']}/rejection",
         aro("AZ:ARO02"), lambda c: {"reason": "subject differs"}),
    Case("get", P + "/parties/<int:organisation_id>/decisions",
         lambda c: f"{P}/parties/{c['supplier_a']}/decisions?policy=organisation", aro("AZ:ARO02")),
    Case("get", P + "/parties/<int:organisation_id>/aros", lambda c: f"{P}/parties/{c['supplier_a']}/aros",
         SRO_REFUSALS, wrong_scope="aro_a_org_only"),
    Case("post", P + "/parties/<int:organisation_id>/aros", lambda c: f"{P}/parties/{c['supplier_a']}/aros",
         SRO_REFUSALS, lambda c: {"name": "Nina Nominee", "email": "nina@alpha.example", "scopes": ["organisation"],
                                  "acts_for": [c["supplier_a"]]}, wrong_scope="aro_a_org_only"),
    Case("post", P + "/parties/<int:organisation_id>/aros/<int:appointment_id>/withdrawal",
         lambda c: f"{P}/parties/{c['supplier_a']}/aros/{c['target_aro']}/withdrawal", SRO_REFUSALS,
         lambda c: {"reason": "left the company"}, wrong_scope="aro_a_org_only"),
    Case("get", P + "/queue", lambda c: P + "/queue", OPERATOR_REFUSALS),
    Case("post", P + "/submissions/<int:submission_id>/verification",
         lambda c: f"{P}/submissions/{c['submitted']}/verification", OPERATOR_REFUSALS,
         lambda c: {"checks": {"identity_verified": True, "screening_passed": True}}),
    Case("post", P + "/submissions/<int:submission_id>/approval",
         lambda c: f"{P}/submissions/{c['verified']}/approval", OPERATOR_REFUSALS),
    Case("post", P + "/submissions/<int:submission_id>/rejection",
         lambda c: f"{P}/submissions/{c['submitted']}/rejection", OPERATOR_REFUSALS,
         lambda c: {"reason": "identity documents do not match"}),
    Case("post", P + "/parties/<int:organisation_id>/srept", lambda c: f"{P}/parties/{c['supplier_b']}/srept",
         OPERATOR_REFUSALS, lambda c: {"passed": True}),
    Case("get", P + "/forms", lambda c: P + "/forms", PUBLIC),
    Case("get", P + "/forms/<name>", lambda c: P + "/forms/aro_nomination", PUBLIC),
    Case("get", P + "/forms/<name>/print", lambda c: P + "/forms/aro_nomination/print", PUBLIC),
    Case("get", P + "/openapi.json", lambda c: P + "/openapi.json", PUBLIC),
    Case("post", P + "/forms/<name>", lambda c: P + "/forms/aro_nomination",
         {**SRO_REFUSALS}, lambda c: {"organisation_id": c["supplier_a"], "name": "Nina Nominee",
                                      "email": "nina@alpha.example", "scopes": ["device"],
                                      "acts_for": [c["supplier_a"]]}, wrong_scope="aro_a_org_only"),
    Case("get", P + "/submissions/<int:submission_id>", lambda c: f"{P}/submissions/{c['submitted']}",
         SUBMITTER_REFUSALS),
    Case("get", P + "/submissions/<int:submission_id>/print", lambda c: f"{P}/submissions/{c['submitted']}/print",
         SUBMITTER_REFUSALS),
    Case("post", P + "/submissions/<int:submission_id>/withdrawal",
         lambda c: f"{P}/submissions/{c['submitted']}/withdrawal", {**SUBMITTER_REFUSALS, "operator": "AZ:RA01"}),
]


def context(ra, population: Population) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    release = ra.submit_organisation_csr(ra.authenticate_token(population.aro_a.token), org_csr_pem(SUPPLIER_A_IS))
    forms = FormService(ra)
    sro = ra.authenticate_token(population.sro_a.token)
    operator = ra.authenticate_token(population.operator.token)
    nomination = {"organisation_id": population.supplier_a, "name": "Vera Verified", "email": "vera@alpha.example",
                  "scopes": ["organisation"], "acts_for": [population.supplier_a]}
    submitted, _ = forms.submit("aro_nomination", nomination, sro)
    verified, _ = forms.submit("aro_nomination", {**nomination, "name": "Vic Verified"}, sro)
    forms.verify(verified.id, operator, {"identity_verified": True, "screening_passed": True})
    return {"serial": release.serial, "supplier_a": population.supplier_a, "supplier_b": population.supplier_b,
            "target_aro": population.aro_a_device_only.appointment_id, "submitted": submitted.id,
            "verified": verified.id}


def member_for(population: Population, caller: str, case: Case):  # type: ignore[no-untyped-def]
    return {"anonymous": None, "withdrawn_aro": population.aro_a_withdrawn, "aro_of_another_party": population.aro_b,
            "sro_not_aro": population.sro_a, "manufacturer": population.manufacturer_contact,
            "wrong_scope": getattr(population, case.wrong_scope), "operator": population.operator,
            "correct": population.aro_a}[caller]


def test_every_ra_endpoint_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    endpoints = {(method.lower(), rule.rule) for rule in app.url_map.iter_rules()
                 if rule.rule.startswith(P) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert endpoints == {(case.method, case.rule) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.rule}" for c in CASES])
def test_authorisation_matrix(ra, population: Population, client, case: Case) -> None:  # type: ignore[no-untyped-def]
    values = context(ra, population)
    # refusals first (they change nothing), then the callers who succeed
    order = sorted(CALLERS, key=lambda caller: case.expected[caller] is None)
    for caller in order:
        member = member_for(population, caller, case)
        response = client.open(case.path(values), method=case.method.upper(), headers=auth(member),
                               json=case.body(values) if case.body else None)
        code = case.expected[caller]
        if code is None:
            assert response.status_code < 300, (caller, response.status_code, response.get_data(as_text=True))
        else:
            assert response.mimetype == "application/problem+json", (caller, response.status_code)
            problem = response.get_json()
            assert problem["code"] == code, (caller, problem)
            assert response.status_code == {"AU": 401, "AZ": 403, "IN": 403}[code[:2]], (caller, problem)


PORTAL_ARO = {**ARO_REFUSALS, "aro_of_another_party": None, "correct": None}
PORTAL_CASES = [
    ("get", "/portal/csr", {**PORTAL_ARO, "wrong_scope": "AZ:ARO03"}),
    ("get", "/portal/aros", {**SRO_REFUSALS}),
    ("get", "/portal/queue", {**OPERATOR_REFUSALS}),
]


@pytest.mark.parametrize("method,path,expected", PORTAL_CASES, ids=[c[1] for c in PORTAL_CASES])
def test_portal_pages_by_caller(population: Population, client, method: str, path: str,  # type: ignore[no-untyped-def]
                                expected: dict[str, str | None]) -> None:
    case = Case(method, path, lambda c: path, expected)
    for caller in CALLERS:
        member = member_for(population, caller, case)
        response = client.open(path, method=method.upper(), headers=auth(member))
        code = expected[caller]
        if caller == "anonymous":
            assert response.status_code == 302 and "/portal/login" in response.headers["Location"]
        elif code is None:
            assert response.status_code == 200, (caller, response.status_code)
        else:
            assert response.status_code in (401, 403) and code.encode() in response.data, (caller, code)
