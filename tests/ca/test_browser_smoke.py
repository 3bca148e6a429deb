"""The browser harness itself: a real Chromium reaches the app on a loopback port."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By


@pytest.mark.browser
def test_chromium_renders_the_ca_certificate_list(browser, live_server):
    browser.get(f"{live_server}/api/v1/ca/certificates")
    listed = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert [c["name"] for c in listed["certificates"]] == ["root_oca", "issuing_oca", "root_dca", "issuing_dca"]
