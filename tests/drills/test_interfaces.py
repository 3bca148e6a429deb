"""Drills through their interfaces: the JSON API (its OpenAPI document, the role matrix, a whole drill started,
watched, reported and downloaded) and the portal in a real browser, where the PMA starts a drill and watches it
live until it completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from smki.drills.runner import Drills
from smki.instance import Instance
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.web import create_app
from tests.conftest import serving
from tests.drills.conftest import residual_expected
from tests.portal import portal_sign_in, sign_in, submit

SCENARIO = "org_key_method3"


@dataclass(frozen=True)
class People:
    tokens: dict[str, str]   # who -> API token

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


@pytest.fixture
def people(instance: Instance) -> People:
    build = PopulationBuilder(RegistrationAuthority(instance))
    supplier = build.party("Alpha Energy Supply Ltd", "large_supplier", [("IS", "90B3D51F30A00001")])
    dcc = build.party("DCC (test)", "dcc", [])
    return People({
        "pma": build.member(None, "Dr Pat PMA", "pma").token,
        "code_admin": build.member(None, "Cody Admin", "code_admin").token,
        "dcc_operator": build.member(dcc, "Dana DCC", "sro").token,
        "aro": build.member(supplier, "Ada ARO", "aro", scopes=("organisation", "device")).token,
        "sro": build.member(supplier, "Sara SRO", "sro").token,
        "ra_operator": build.member(None, "Rita RA-Operator", "ra_operator").token,
    })


@pytest.fixture
def app(instance: Instance, drills: Drills) -> Flask:
    return create_app(instance)


def wait_until_stopped(client: FlaskClient, run_id: int, headers: dict[str, str],
                       seconds: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/drills/runs/{run_id}", headers=headers).get_json()
        if run["status"] in ("completed", "failed", "paused"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"drill {run_id} still {run['status']} after {seconds} s")


def test_the_openapi_document_describes_every_route_and_the_start_body(app: Flask) -> None:
    document = app.test_client().get("/api/v1/drills/openapi.json").get_json()
    paths = document["paths"]
    assert {"/api/v1/drills/runs", "/api/v1/drills/runs/{run_id}", "/api/v1/drills/runs/{run_id}/report/{fmt}",
            "/api/v1/drills/scenarios"} <= set(paths)
    body = paths["/api/v1/drills/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert SCENARIO in body["properties"]["scenario"]["enum"] and body["additionalProperties"] is False


@pytest.mark.parametrize(("who", "status", "code"), [
    ("pma", 200, None), ("code_admin", 200, None), ("dcc_operator", 200, None),
    ("aro", 403, "AZ:DRL01"), ("sro", 403, "AZ:DRL01"), ("ra_operator", 403, "AZ:DRL01"), ("nobody", 401, "AU:TOK01")])
def test_only_the_pma_a_dcc_operator_and_the_code_administrator_may_use_drills(
        app: Flask, people: People, who: str, status: int, code: str | None) -> None:
    client = app.test_client()
    routes = [("get", "/api/v1/drills/runs"), ("get", "/api/v1/drills/scenarios")]
    if status != 200:
        routes.append(("post", "/api/v1/drills/runs"))   # (starting one is the next tests')
    for method, path in routes:
        response = getattr(client, method)(path, headers=people.headers(who),
                                           json={"scenario": SCENARIO, "devices": 2} if method == "post" else None)
        assert response.status_code == status, (who, path, response.get_json())
        if code:
            assert response.get_json()["code"] == code


def test_the_portal_shows_drills_only_to_those_who_may_use_them(app: Flask, people: People) -> None:
    for who, allowed in (("pma", True), ("aro", False)):
        client = app.test_client()
        portal_sign_in(client, people.tokens[who])
        home = client.get("/portal/").get_data(as_text=True)
        assert ('id="drills-link"' in home) is allowed
        assert client.get("/portal/drills/").status_code == (200 if allowed else 403)


def test_a_bad_start_request_names_every_bad_field_and_starts_nothing(app: Flask, people: People,
                                                                      drills: Drills) -> None:
    response = app.test_client().post("/api/v1/drills/runs", headers=people.headers("pma"),
                                      json={"scenario": "no_such_scenario", "devices": 0, "colour": "red"})
    problem = response.get_json()
    assert response.status_code == 400 and problem["code"] == "FM:API06"
    assert {e["field"] for e in problem["errors"]} >= {"scenario", "devices"}
    assert drills.list() == []


@pytest.mark.slow
def test_a_drill_started_over_the_api_runs_to_its_report(app: Flask, people: People, drills: Drills) -> None:
    client, pma = app.test_client(), people.headers("pma")
    started = client.post("/api/v1/drills/runs", headers=pma, json={"scenario": SCENARIO, "devices": 4, "seed": 7})
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["run_id"]
    assert started.headers["Location"] == f"/api/v1/drills/runs/{run_id}"
    assert client.get(f"/api/v1/drills/runs/{run_id}/report/html", headers=pma).get_json()["code"] == "DR:REP09"
    run = wait_until_stopped(client, run_id, pma)
    assert run["status"] == "completed", run
    assert all(step["status"] in ("done", "skipped") for step in run["steps"])
    record = client.get(f"/api/v1/drills/runs/{run_id}/record", headers=pma).get_json()
    # Still exposed: exactly the devices the scenario's injected faults keep out of reach.
    assert {d["device_id"] for d in record["devices"]["residual"]} == residual_expected(drills, run_id)
    links = client.post(f"/api/v1/drills/runs/{run_id}/report", headers=pma, json={})
    assert links.status_code == 201, links.get_json()
    html = client.get(links.get_json()["html"], headers=pma)
    assert html.status_code == 200 and html.mimetype == "text/html"
    pdf = client.get(links.get_json()["pdf"], headers=pma)
    assert pdf.data.startswith(b"%PDF")
    assert client.get(f"/api/v1/drills/runs/{run_id}/report/pdf", headers=people.headers("aro")).status_code == 403
    paused = client.post(f"/api/v1/drills/runs/{run_id}/pause", headers=pma, json={})
    assert paused.status_code == 409 and paused.get_json()["code"] == "DR:RUN3"


@pytest.fixture
def served_app(app: Flask) -> Iterator[str]:
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.browser
def test_the_pma_starts_a_drill_in_the_portal_and_watches_it_complete(browser, served_app: str,  # type: ignore[no-untyped-def]
                                                                       people: People) -> None:
    sign_in(browser, served_app, people.tokens["pma"])
    browser.find_element(By.ID, "drills-link").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Recovery drills"
    browser.find_element(By.CSS_SELECTOR, f"#scenario option[value='{SCENARIO}']").click()
    browser.find_element(By.ID, "devices").send_keys("3")
    browser.find_element(By.ID, "seed").send_keys("11")
    submit(browser, "start")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Drill ")
    # The page is not reloaded: its live view follows the run until it completes.
    WebDriverWait(browser, 600, poll_frequency=1).until(
        lambda b: b.find_element(By.ID, "status").text in ("completed", "failed"))
    assert browser.find_element(By.ID, "status").text == "completed"
    done = browser.find_element(By.ID, "steps-done").text
    assert done == browser.find_element(By.ID, "steps-total").text and int(done) > 0
    submit(browser, "make-report")
    browser.find_element(By.ID, "report-html").click()
    WebDriverWait(browser, 30).until(lambda b: "drill" in b.page_source.lower() and "residual" in b.page_source.lower())
