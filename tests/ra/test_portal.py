"""Portal pages in headless Chromium: an ARO pastes an Organisation CSR and downloads the certificate; an SRO
nominates and withdraws AROs; an RA operator works the verification queue."""

from __future__ import annotations

import urllib.request

import pytest
from selenium.webdriver.common.by import By

from tests.portal import sign_in, submit
from tests.ra.conftest import SUPPLIER_A_IS, SUPPLIER_B_IS, Population, org_csr_pem

pytestmark = pytest.mark.browser


def test_aro_pastes_a_csr_and_downloads_the_certificate(browser, live_server, population: Population) -> None:
    sign_in(browser, live_server, population.aro_a.token)
    browser.find_element(By.LINK_TEXT, "Submit an Organisation CSR").click()
    browser.find_element(By.ID, "csr").send_keys(org_csr_pem(SUPPLIER_A_IS))
    submit(browser, "submit-csr")
    serial = browser.find_element(By.ID, "serial").text
    assert len(serial) == 32
    assert browser.find_element(By.ID, "certificate").text.startswith("-----BEGIN CERTIFICATE-----")
    href = browser.find_element(By.ID, "download").get_attribute("href")
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in browser.get_cookies())
    with urllib.request.urlopen(urllib.request.Request(href, headers={"Cookie": cookie})) as response:
        assert response.headers["Content-Disposition"] == f'attachment; filename="{serial}.pem"'
        assert response.read().startswith(b"-----BEGIN CERTIFICATE-----")

    # another Party's User ID: refused on the page, with its code
    browser.get(f"{live_server}/portal/csr")
    browser.find_element(By.ID, "csr").send_keys(org_csr_pem(SUPPLIER_B_IS))
    submit(browser, "submit-csr")
    assert "IN:ORG01" in browser.find_element(By.ID, "csr-error").text


def test_sro_nominates_and_withdraws_aros(browser, live_server, ra, population: Population) -> None:
    sign_in(browser, live_server, population.sro_a.token)
    browser.get(f"{live_server}/portal/aros")
    browser.find_element(By.ID, "name").send_keys("Nora Nominee")
    browser.find_element(By.ID, "email").send_keys("nora@alpha.example")
    browser.find_element(By.ID, "scope-organisation").click()
    submit(browser, "submit-nomination")
    assert "ARO Nomination Form" in browser.find_element(By.ID, "message").text

    target = population.aro_a_org_only
    browser.find_element(By.ID, f"reason-{target.appointment_id}").send_keys("moved on")
    submit(browser, f"withdraw-{target.appointment_id}")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-appointment='{target.appointment_id}'] .status")
    assert row.text == "withdrawn"
    from smki.ra.identity import NotAuthenticated
    with pytest.raises(NotAuthenticated):
        ra.authenticate_token(target.token)


def test_operator_verifies_and_approves_from_the_queue(browser, live_server, ra, population: Population) -> None:
    from smki.ra.forms import FormService

    submission, _ = FormService(ra).submit("aro_nomination", {
        "organisation_id": population.supplier_a, "name": "Quinn Queued", "email": "quinn@alpha.example",
        "scopes": ["organisation"], "acts_for": [population.supplier_a]}, ra.authenticate_token(population.sro_a.token))
    sign_in(browser, live_server, population.operator.token)
    browser.get(f"{live_server}/portal/queue")
    browser.find_element(By.ID, f"identity_verified-{submission.id}").click()
    browser.find_element(By.ID, f"screening_passed-{submission.id}").click()
    submit(browser, f"verify-{submission.id}")
    status = browser.find_element(By.CSS_SELECTOR, f"tr[data-submission='{submission.id}'] .status")
    assert status.text == "verified"
    submit(browser, f"approve-{submission.id}")
    token = browser.find_element(By.CSS_SELECTOR, "code.credential[data-name='api_token']").text
    principal = ra.authenticate_token(token)
    assert principal.name == "Quinn Queued" and principal.holds("aro") is not None


def test_a_withdrawn_aro_is_signed_out_at_once(browser, live_server, ra, population: Population) -> None:
    from smki.ra.population import PopulationBuilder

    sign_in(browser, live_server, population.aro_a_device_only.token)
    PopulationBuilder(ra).withdraw(population.aro_a_device_only)
    browser.get(f"{live_server}/portal/")
    assert browser.find_element(By.ID, "error-code").text == "AU:TOK03"


def test_wrong_role_pages_are_refused(browser, live_server, population: Population) -> None:
    sign_in(browser, live_server, population.aro_a.token)
    browser.get(f"{live_server}/portal/queue")
    assert browser.find_element(By.ID, "error-code").text == "AZ:OPR01"
    browser.get(f"{live_server}/portal/aros")
    assert browser.find_element(By.ID, "error-code").text == "AZ:SRO01"


def test_any_rapp_form_is_submitted_through_the_portal_with_every_bad_field_at_once(
        browser, live_server, ra, population: Population) -> None:
    issued = ra.submit_organisation_csr(ra.authenticate_token(population.aro_a.token), org_csr_pem(SUPPLIER_A_IS))
    sign_in(browser, live_server, population.aro_a.token)
    browser.find_element(By.ID, "forms-link").click()
    listed = {row.get_attribute("data-form") for row in browser.find_elements(By.CSS_SELECTOR, "#forms tbody tr")}
    assert "certificate_revocation_request" in listed and "party_registration" in listed and len(listed) == 8

    browser.get(f"{live_server}/portal/forms/certificate_revocation_request")
    browser.find_element(By.ID, "serial").send_keys("not-hex")
    submit(browser, "submit-form")  # no reason chosen either
    fields = {item.get_attribute("data-field") for item in browser.find_elements(By.CSS_SELECTOR, "#form-findings li")}
    assert {"serial", "reason"} <= fields  # both bad fields, in one answer

    browser.find_element(By.ID, "serial").clear()
    browser.find_element(By.ID, "serial").send_keys(issued.serial)
    browser.find_element(By.CSS_SELECTOR, "#reason option[value='key_compromise']").click()
    submit(browser, "submit-form")
    assert browser.find_element(By.ID, "submission-status").text == "submitted"
    submission = int(browser.find_element(By.ID, "submission-id").text)
    from smki.ra.forms import FormService

    stored = FormService(ra).get(submission, ra.authenticate_token(population.aro_a.token))
    assert stored.form == "certificate_revocation_request" and stored.payload["serial"] == issued.serial
