"""Portal pages: in headless Chromium for what a person does, and through the test client for the rules."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from repository.documents import DocumentStore
from repository.models import LodgedDocument, RepositorySession, RepositoryUser
from smki.publication import publish
from tests.portal import form_token

PASSWORD = "a long enough password"


@pytest.fixture
def portal_user(access) -> str:
    access.create_user("aro-portal", PASSWORD, "party:ACME/aro:portal")
    return "aro-portal"


def log_in(client, password=PASSWORD, *, csrf: bool = True, path: str = "/repository/login"):
    form = {"username": "aro-portal", "password": password}
    if csrf:
        form["csrf_token"] = form_token(client, "/repository/login")
    return client.post(path, data=form)


def test_pages_need_a_log_in_and_next_never_leaves_the_portal(client, portal_user):
    response = client.get("/repository/documents")
    assert response.status_code == 302 and "/repository/login" in response.headers["Location"]

    response = log_in(client, path="/repository/login?next=https://evil.example/")
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
    client.post("/repository/logout", data={"csrf_token": form_token(client, "/repository/")})
    assert client.get("/repository/").status_code == 302


def count(instance, model) -> int:  # type: ignore[no-untyped-def]
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_log_in_without_the_pages_token_is_refused_and_changes_nothing(client, instance, portal_user):
    # Another site's form could otherwise sign a person in under its own account (login CSRF), or spend
    # the account's five tries and lock the person out.
    for _ in range(6):
        forged = log_in(client, password="not the password", csrf=False)
        assert forged.status_code == 400 and forged.mimetype == "text/html"
        assert 'id="error-code">FM:CSRF1<' in forged.data.decode()
    forged = log_in(client, csrf=False)
    assert forged.status_code == 400 and client.get_cookie("smki_repository_session") is None
    with instance.database.session() as session:
        assert session.scalar(select(RepositoryUser.failures).where(RepositoryUser.username == portal_user)) == 0
    assert count(instance, RepositorySession) == 0

    assert log_in(client).status_code == 302  # from the page itself: in, and not locked


def test_log_out_without_the_token_is_refused(client, portal_user):
    log_in(client)

    assert client.post("/repository/logout").status_code == 400
    assert client.get("/repository/").status_code == 200  # still logged in


def test_the_api_checks_a_change_made_with_the_portal_session(client, instance, portal_user, access):
    log_in(client)
    document = {"name": "smki-cps", "title": "CPS", "media_type": "text/plain",
                "content_base64": base64.b64encode(b"CPS v1").decode()}

    by_cookie = client.post("/api/v1/repository/documents", json=document)
    assert by_cookie.status_code == 400 and by_cookie.get_json()["code"] == "FM:CSRF1"
    assert count(instance, LodgedDocument) == 0
    # a script with its API key and no portal cookie needs no token
    pma = access.issue_api_key("smki-pma/aro:smith", may_lodge_documents=True)
    client.delete_cookie("smki_repository_session", path="/")
    lodged = client.post("/api/v1/repository/documents", json=document, headers={"X-API-Key": pma})
    assert lodged.status_code == 201 and count(instance, LodgedDocument) == 1


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


def test_a_signed_in_users_searches_and_views_are_in_the_request_log_as_portal_requests(client, instance,
                                                                                          portal_user):
    """Appendix P's demand rule counts Portal requests beside Web Service ones: the portal logs what a
    signed-in user asks for (an empty search form is not a search; a refusal is logged with its status)."""
    import datetime as dt

    from repository.demand import request_counts
    from repository.models import RepositoryRequestLog
    from repository.request_log import flush_all

    log_in(client)
    assert client.get("/repository/").status_code == 200  # the empty form: not a search
    assert client.get("/repository/?device_id=00-DB-5A-00-00-00-00-01").status_code == 200
    assert client.get("/repository/certificates/0badc0de").status_code == 404
    flush_all()

    with instance.database.session() as session:
        logged = session.execute(select(RepositoryRequestLog.operation, RepositoryRequestLog.response_code,
                                        RepositoryRequestLog.holder)
                                 .order_by(RepositoryRequestLog.id)).all()
    assert [(operation, code) for operation, code, _ in logged] == [("portal_search", 200), ("portal_view", 404)]
    assert {holder for _, _, holder in logged} == {"party:ACME/aro:portal"}

    now = dt.datetime.now(dt.UTC)
    counts = request_counts(instance.database, [now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)],
                            {"portal_search": "portal", "portal_view": "portal"})
    assert [(c.holder, c.operation, c.requests) for c in counts] == [("party:ACME/aro:portal", "portal", 2)]
