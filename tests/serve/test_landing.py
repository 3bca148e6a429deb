"""Issue 8 item 16: ``/`` lists the portals, the API documents and the other services (it was a JSON 404):
HTML for a browser, JSON for ``Accept: application/json``."""

from __future__ import annotations

import lxml.html
import pytest

from smki.instance import Instance
from smki.web import create_app

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.fixture
def client(instance: Instance):  # type: ignore[no-untyped-def]
    return create_app(instance).test_client()


def test_a_script_gets_the_links_as_json_and_every_one_leads_somewhere(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    listed = response.get_json()
    assert {link["href"] for link in listed["portals"]} == {"/portal/", "/portal/device-csr-batches", "/repository/"}
    assert {link["href"] for link in listed["api_documents"]} >= {"/api/v1/ra/openapi.json",
                                                                  "/api/v1/repository/openapi.json"}
    for link in listed["portals"]:  # a portal page, or its sign-in
        assert client.get(link["href"]).status_code in (200, 302), link
    for link in listed["api_documents"]:
        document = client.get(link["href"])
        assert document.status_code == 200 and document.get_json()["openapi"].startswith("3."), link
    adapter = client.application.url_map.bind("localhost")
    for link in listed["services"]:  # the XML services take a POST with credentials: the route exists
        endpoint, _arguments = adapter.match(link["href"], method=link["method"])
        assert endpoint != "landing", link


def test_a_browser_gets_a_page_of_links(client) -> None:  # type: ignore[no-untyped-def]
    for accept in (BROWSER_ACCEPT, "*/*"):
        response = client.get("/", headers={"Accept": accept})
        assert response.status_code == 200 and response.mimetype == "text/html"
        page = lxml.html.fromstring(response.data)
        assert page.xpath("//ul[@id='portals']//a/@href") == ["/portal/", "/portal/device-csr-batches", "/repository/"]
        assert "/api/v1/ra/openapi.json" in page.xpath("//ul[@id='api-documents']//a/@href")
