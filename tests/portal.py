"""Helpers for driving the portals: in Chromium (submit a form and wait for the next page, sign in) and
through Flask's test client (take a page's CSRF token, as a browser would, and sign in with it)."""

from __future__ import annotations

import lxml.html
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait


def submit(browser, element_id: str) -> None:  # type: ignore[no-untyped-def]
    """Click a submit button and wait until the next page has replaced this one."""
    button = browser.find_element(By.ID, element_id)
    button.click()
    # while Chromium swaps the page, the inspector may answer "cannot find context": poll again
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(staleness_of(button))


def sign_in(browser, base: str, token: str) -> None:  # type: ignore[no-untyped-def]
    browser.get(f"{base}/portal/login")
    browser.find_element(By.ID, "token").send_keys(token)
    submit(browser, "sign-in")
    assert "Welcome" in browser.find_element(By.TAG_NAME, "h1").text


def form_token(client, path: str, **request: object) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token a page's form carries (the portals render it as a hidden ``csrf_token`` field)."""
    page = client.get(path, **request)
    assert page.status_code == 200, page.status_code
    values = lxml.html.fromstring(page.data).xpath("//form//input[@name='csrf_token']/@value")
    assert values, f"{path} has no form carrying a CSRF token"
    return str(values[0])


def portal_sign_in(client, token: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in to the RA portal with an API token, as the sign-in page does."""
    response = client.post("/portal/login", data={"token": token, "csrf_token": form_token(client, "/portal/login")})
    assert response.status_code == 302, response.data[:500]
