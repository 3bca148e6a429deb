"""A partial rehearsal marks exactly the scenarios done: a positive scenario passed, a negative one passed
because the sandbox refused as it should, a positive one failed, and everything else not run. Only the
rehearsing Party's interactions are recorded."""

from __future__ import annotations

from sqlalchemy import func, select

from smki.srept.models import SreptInteraction
from tests.ra.conftest import SUPPLIER_B_IS, Population, auth, org_csr_pem
from tests.srept.conftest import NEWCOMER_IS, Newcomer, open_run, states

P = "/api/v1/ra"


def test_exactly_the_scenarios_done_are_marked(client, ra, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    headers = auth(newcomer.aro)

    issued = client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=headers)
    assert issued.status_code == 201, issued.get_json()  # the rehearsal footing: not yet passed, yet issued
    refused = client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=headers)
    assert refused.get_json()["code"] == "IN:ORG01"
    # the Party says it is retrieving a certificate; the serial is not one it holds, so the scenario fails
    missing = client.get(f"{P}/certificates/ABCDEF0123", headers={**headers, "X-SREPT-Scenario": "ORG-05"})
    assert missing.status_code >= 400
    # another Party's interaction during the run is not recorded for it
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=auth(population.aro_b))

    marked = states(client, newcomer.sro, run["id"])
    assert {k: v for k, v in marked.items() if v != "not_run"} == {
        "ORG-01": "passed", "ORG-02": "passed", "ORG-05": "failed"}
    assert len(marked) > 30  # every other applicable scenario is listed, not run
    with ra.database.session() as session:
        recorded = session.execute(select(func.count()).select_from(SreptInteraction)).scalar_one()
    assert recorded == 3


def test_a_failure_before_a_pass_leaves_the_scenario_passed(client, population: Population,
                                                             newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    headers = auth(newcomer.aro)
    declared = {**headers, "X-SREPT-Scenario": "ORG-01"}
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=declared)
    assert states(client, newcomer.aro, run["id"])["ORG-01"] == "failed"
    client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=declared)
    assert states(client, newcomer.aro, run["id"])["ORG-01"] == "passed"


def test_requests_with_the_run_key_alone_count_for_the_run(client, population: Population,
                                                            newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    run = open_run(client, population.operator, newcomer.party)
    key = {"X-SREPT-Run-Key": run["run_key"]}
    assert client.post(f"{P}/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=key).status_code == 401
    assert client.get("/api/v1/repository/certificates", headers=key).status_code == 401
    # a key that is not the run's records nothing
    client.get("/api/v1/repository/certificates", headers={"X-SREPT-Run-Key": "srept_not-the-key"})
    marked = states(client, population.operator, run["id"])
    assert marked["ORG-06"] == "passed" and marked["RPA-05"] == "passed"
    assert sum(1 for v in marked.values() if v != "not_run") == 2


def test_who_may_open_and_read_a_run(client, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    body = {"organisation_id": newcomer.party}
    assert client.post("/api/v1/srept/runs", json=body, headers=auth(newcomer.aro)).get_json()["code"] == "AZ:SRO01"
    assert client.post("/api/v1/srept/runs", json=body, headers=auth(population.sro_a)).get_json()["code"] \
        == "AZ:SRO02"
    opened = client.post("/api/v1/srept/runs", json=body, headers=auth(newcomer.sro))
    assert opened.status_code == 201
    again = client.post("/api/v1/srept/runs", json=body, headers=auth(population.operator))
    assert again.status_code == 409 and again.get_json()["code"] == "WF:SRP01"
    run_id = opened.get_json()["id"]
    other = client.get(f"/api/v1/srept/runs/{run_id}", headers=auth(population.aro_b))
    assert other.status_code == 403 and other.get_json()["code"] == "AZ:SRP01"
    assert client.get("/api/v1/srept/runs/999999", headers=auth(population.operator)).status_code == 404
    bad = client.post("/api/v1/srept/runs", json={"organisation_id": "one"}, headers=auth(population.operator))
    assert bad.status_code == 400 and bad.get_json()["code"] == "FM:SRP07"


def test_hostile_values_get_coded_refusals(client, population: Population, newcomer: Newcomer) -> None:  # type: ignore[no-untyped-def]
    operator = auth(population.operator)
    for value in ("9" * 40, "-1", "abc", "2147483648", ""):
        listed = client.get(f"/api/v1/srept/runs?organisation_id={value}", headers=operator)
        assert listed.status_code == 400 and listed.get_json()["code"] == "FM:SRP07", value
    assert client.get("/api/v1/srept/runs/99999999999999999999", headers=operator).status_code == 404
    run = open_run(client, population.operator, newcomer.party)
    for body in ({"scenario": "EXT-01", "note": "seen", "evidence_base64": "!!not base64!!"},
                 {"scenario": "EXT-01"}, {"scenario": "ORG-01", "note": "not attestable"}, [1, 2]):
        answer = client.post(f"/api/v1/srept/runs/{run['id']}/attestations", json=body, headers=operator)
        assert 400 <= answer.status_code < 500 and answer.get_json()["code"] in ("FM:SRP07", "WF:SRP05"), body
    assert client.post(f"/api/v1/srept/runs/{run['id']}/attestations", headers=auth(newcomer.sro),
                       json={"scenario": "EXT-01", "note": "by the Party"}).get_json()["code"] == "AZ:OPR01"


def test_the_openapi_document_names_every_route(client, app) -> None:  # type: ignore[no-untyped-def]
    document = client.get("/api/v1/srept/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    served = {(method, rule.rule.replace("<int:", "{").replace(">", "}"))
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("srept_api.")
              and not rule.rule.endswith("openapi.json") for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
