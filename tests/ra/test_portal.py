"""Portal pages in headless Chromium: an ARO pastes an Organisation CSR and downloads the certificate; an SRO
nominates and withdraws AROs; an RA operator works the verification queue. Through the test client: every
form, sign-in included, is refused without the page's CSRF token."""

from __future__ import annotations

import urllib.request

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import func, select

from smki.core.config import current_settings
from smki.ra.models import FormSubmission
from tests.portal import form_token, portal_sign_in, sign_in, submit
from tests.ra.conftest import SUPPLIER_A_IS, SUPPLIER_B_IS, Population, org_csr_pem


@pytest.mark.browser
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


@pytest.mark.browser
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


@pytest.mark.browser
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


@pytest.mark.browser
def test_a_withdrawn_aro_is_signed_out_at_once(browser, live_server, ra, population: Population) -> None:
    from smki.ra.population import PopulationBuilder

    sign_in(browser, live_server, population.aro_a_device_only.token)
    PopulationBuilder(ra).withdraw(population.aro_a_device_only)
    browser.get(f"{live_server}/portal/")
    assert browser.find_element(By.ID, "error-code").text == "AU:TOK03"


@pytest.mark.browser
def test_wrong_role_pages_are_refused(browser, live_server, population: Population) -> None:
    sign_in(browser, live_server, population.aro_a.token)
    browser.get(f"{live_server}/portal/queue")
    assert browser.find_element(By.ID, "error-code").text == "AZ:OPR01"
    browser.get(f"{live_server}/portal/aros")
    assert browser.find_element(By.ID, "error-code").text == "AZ:SRO01"


@pytest.mark.browser
def test_any_rapp_form_is_submitted_through_the_portal_with_every_bad_field_at_once(
        browser, live_server, ra, population: Population) -> None:
    issued = ra.submit_organisation_csr(ra.authenticate_token(population.aro_a.token), org_csr_pem(SUPPLIER_A_IS))
    sign_in(browser, live_server, population.aro_a.token)
    browser.find_element(By.ID, "forms-link").click()
    listed = {row.get_attribute("data-form") for row in browser.find_elements(By.CSS_SELECTOR, "#forms tbody tr")}
    every_form = {path.stem for path in current_settings().rapp_forms.glob("*.yaml")}
    assert "certificate_revocation_request" in listed and "party_registration" in listed and listed == every_form

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


def submissions(ra) -> int:  # type: ignore[no-untyped-def]
    with ra.database.session() as session:
        return session.scalar(select(func.count()).select_from(FormSubmission)) or 0


def test_sign_in_without_the_pages_token_is_refused(client, population: Population) -> None:
    # Another site posting its own token into the sign-in form would sign the person in as its ARO.
    forged = client.post("/portal/login", data={"token": population.aro_a.token})

    assert forged.status_code == 400 and forged.mimetype == "text/html"
    page = forged.data.decode()
    assert 'id="error-code">FM:CSRF1<' in page and "reload the page" in page
    assert client.get("/portal/").status_code == 302  # not signed in


def test_a_form_posted_without_the_pages_token_is_refused_and_nothing_is_recorded(client, ra,
                                                                                population: Population) -> None:
    portal_sign_in(client, population.sro_a.token)
    nomination = {"name": "Fiona Forged", "email": "fiona@alpha.example", "scopes": "organisation"}

    forged = client.post("/portal/aros", data=nomination)
    assert forged.status_code == 400 and "FM:CSRF1" in forged.data.decode()
    stale = client.post("/portal/aros", data={**nomination, "csrf_token": "not-the-token"})
    assert stale.status_code == 400 and "FM:CSRF1" in stale.data.decode()
    assert submissions(ra) == 0

    sent = client.post("/portal/aros", data={**nomination, "csrf_token": form_token(client, "/portal/aros")})
    assert sent.status_code == 200 and "ARO Nomination Form" in sent.data.decode()
    assert submissions(ra) == 1


def test_signing_out_needs_the_token_too(client, population: Population) -> None:
    portal_sign_in(client, population.aro_a.token)

    assert client.post("/portal/logout").status_code == 400
    assert client.get("/portal/").status_code == 200  # still signed in: another site cannot sign a person out
    assert client.post("/portal/logout", data={"csrf_token": form_token(client, "/portal/")}).status_code == 302
    assert client.get("/portal/").status_code == 302


def test_every_form_route_of_the_app_is_checked_unless_its_api_is_exempt_on_purpose(app) -> None:
    """A new portal form is protected without anyone remembering to; an API is exempt only by name."""
    from smki.web.csrf import EXEMPT_BLUEPRINTS, EXEMPT_ENDPOINTS

    client = app.test_client()
    adapter = app.url_map.bind("localhost")
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        blueprint = rule.endpoint.rpartition(".")[0]
        if blueprint in EXEMPT_BLUEPRINTS or rule.endpoint in EXEMPT_ENDPOINTS:
            assert not blueprint.endswith("portal"), rule.endpoint  # a portal is never exempt
            continue
        path = adapter.build(rule.endpoint, {argument: 1 for argument in rule.arguments})
        response = client.post(path, data={"anything": "x"})
        assert response.status_code == 400 and "FM:CSRF1" in response.data.decode(), (rule.rule, response.status)
        checked.append(rule.endpoint)
    assert {"ra_portal.login", "ra_portal.form", "devicecsr.portal_batches", "repository_portal.login",
            "repository_portal.logout"} <= set(checked)
