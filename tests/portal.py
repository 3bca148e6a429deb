"""Helpers for driving the portal in Chromium: submit a form and wait for the next page, sign in."""

from __future__ import annotations

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
