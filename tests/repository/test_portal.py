"""Portal pages: in headless Chromium for what a person does, and through the test client for the rules."""

from __future__ import annotations

import pytest

from repository.documents import DocumentStore
from smki.publication import publish

PASSWORD = "a long enough password"


@pytest.fixture
def portal_user(access) -> str:
    access.create_user("aro-portal", PASSWORD, "party:ACME/aro:portal")
    return "aro-portal"


def log_in(client, password=PASSWORD):
    return client.post("/repository/login", data={"username": "aro-portal", "password": password})


def test_pages_need_a_log_in_and_next_never_leaves_the_portal(client, portal_user):
    response = client.get("/repository/documents")
    assert response.status_code == 302 and "/repository/login" in response.headers["Location"]

    response = client.post("/repository/login?next=https://evil.example/", data={"username": portal_user,
                                                                               "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/repository/"
    cookie = client.get_cookie("smki_repository_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"


def test_wrong_passwords_are_refused_then_the_account_locks(client, portal_user):
    for _ in range(5):
        assert log_in(client, password="not the password").status_code == 401
    locked = log_in(client)
    assert locked.status_code == 403 and b"locked" in locked.data


def test_logout_ends_the_session(client, portal_user):
    log_in(client)
    assert client.get("/repository/").status_code == 200
    client.post("/repository/logout")
    assert client.get("/repository/").status_code == 302


@pytest.mark.browser
def test_a_person_searches_views_downloads_and_reads_the_lists(browser, live_server, instance, repository, issue,
                                                               interop_org, portal_user):
    from selenium.webdriver.common.by import By

    repository.lodge_many(interop_org)
    sandbox = repository.lodge(issue("organisation", "90-B3-D5-1F-30-01-00-00")).record
    revoked = repository.lodge(issue("organisation", "90-B3-D5-1F-30-01-00-00")).record
    repository.revoke(revoked.serial, "keyCompromise", requested_by="dcc")
    publish(instance, "crl")
    publish(instance, "arl")
    DocumentStore(instance.database).lodge("smki-rapp", b"RAPP v1", title="SMKI RAPP", media_type="text/plain",
                                           lodged_by="smki-pma/aro:a")

    browser.get(f"{live_server}/repository/")
    browser.find_element(By.ID, "username").send_keys(portal_user)
    browser.find_element(By.ID, "password").send_keys("wrong password here")
    browser.find_element(By.ID, "login").click()
    assert "not right" in browser.find_element(By.ID, "login-error").text

    browser.find_element(By.ID, "username").send_keys(portal_user)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    browser.find_element(By.ID, "subject_eui").send_keys("90-B3-D5-1F-30-01-00-00")
    browser.find_element(By.ID, "search").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 14  # 12 ZAZ1 certificates of that supplier and the two sandbox ones
    assert any(f"{revoked.serial}" in row.text and "R (revoked)" in row.text for row in rows)

    browser.find_element(By.LINK_TEXT, sandbox.serial).click()
    fields = browser.find_element(By.ID, "fields").text
    assert "x500UniqueIdentifier=0090B3D51F30010000" in fields
    assert "keyUsage (2.5.29.15) (critical)" in fields and "SHA-256 fingerprint" in fields
    assert browser.find_element(By.ID, "pem").text.startswith("-----BEGIN CERTIFICATE-----")
    assert "download.pem" in browser.find_element(By.ID, "download-pem").get_attribute("href")

    browser.find_element(By.LINK_TEXT, "CRL and ARL").click()
    crl = browser.find_element(By.ID, "crl")
    assert crl.find_element(By.CLASS_NAME, "number").text == "1"
    assert [c.text for c in crl.find_elements(By.CLASS_NAME, "serial")] == [revoked.serial]

    browser.find_element(By.LINK_TEXT, "Documents").click()
    assert "SMKI RAPP" in browser.find_element(By.ID, "documents").text
    browser.find_element(By.ID, "logout").click()
    assert browser.find_element(By.ID, "login")


@pytest.mark.browser
def test_a_bad_search_shows_an_error_a_person_can_act_on(browser, live_server, portal_user):
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{live_server}/repository/login")
    browser.find_element(By.ID, "username").send_keys(portal_user)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    browser.find_element(By.ID, "device_id").send_keys("not a device")
    browser.find_element(By.ID, "search").click()
    assert "EUI-64" in browser.find_element(By.ID, "search-error").text
