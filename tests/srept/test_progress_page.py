"""The progress page in headless Chromium: each scenario as not run, passed or failed, with links to the
interactions that count, which show the request and the answer."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.portal import sign_in
from tests.ra.conftest import SUPPLIER_B_IS, Population, auth, org_csr_pem
from tests.srept.conftest import NEWCOMER_IS, Newcomer, open_run


@pytest.mark.browser
def test_the_sro_follows_the_run_in_the_portal(browser, live_server, client, population: Population,  # type: ignore[no-untyped-def]
                                               newcomer: Newcomer) -> None:
    run = open_run(client, population.operator, newcomer.party)
    aro = auth(newcomer.aro)
    client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(NEWCOMER_IS)}, headers=aro)
    client.post("/api/v1/ra/csr/organisation", json={"csr": org_csr_pem(SUPPLIER_B_IS)}, headers=aro)
    client.get("/api/v1/ra/certificates/ABCDEF", headers={**aro, "X-SREPT-Scenario": "ORG-05"})

    sign_in(browser, live_server, newcomer.sro.token)
    browser.get(f"{live_server}/portal/srept/runs/{run['id']}")
    assert "Newcomer Energy Ltd" in browser.find_element(By.TAG_NAME, "h1").text

    def state(scenario: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f"tr[data-scenario='{scenario}'] .state").text

    # the SRO's own sign-in is the Party's too: it passes PTL-01
    assert (state("ORG-01"), state("ORG-02"), state("PTL-01"), state("ORG-05"), state("BAT-01")) == \
        ("passed", "passed", "passed", "failed", "not run")
    assert browser.find_element(By.ID, "count-passed").text == "3"
    assert browser.find_element(By.ID, "count-failed").text == "1"
    browser.find_element(By.CSS_SELECTOR, "tr[data-scenario='ORG-02'] a.passing").click()
    assert "IN:ORG01" in browser.find_element(By.ID, "outcome").text
    assert "POST /api/v1/ra/csr/organisation" in browser.find_element(By.ID, "request-line").text
    assert "BEGIN CERTIFICATE REQUEST" in browser.find_element(By.ID, "request-body").text

    # another Party's people cannot read it
    sign_in(browser, live_server, population.aro_b.token)
    browser.get(f"{live_server}/portal/srept/runs/{run['id']}")
    assert "AZ:SRP01" in browser.page_source
