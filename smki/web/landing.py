"""``/``: what this service serves, with links: the portals, the API documents and the other services. HTML
for a browser, JSON for ``Accept: application/json``.

Links are built with ``url_for`` from endpoint names, so a renamed route fails the landing page's test
rather than leaving a dead link; the OpenAPI documents are found in the URL map, so an area that adds one
is listed without an edit here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from flask import Response, current_app, jsonify, render_template, request, url_for

# (title, endpoint, arguments, what a person does there)
PORTALS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("RA portal", "ra_portal.home", {},
     "Sign in with an API token: AROs submit Organisation CSRs, SROs nominate AROs, RA operators work the queue."),
    ("Device CSR batches", "devicecsr.portal_batches", {},
     "Upload a zip of Device CSRs and download the results (after signing in to the RA portal)."),
    ("Repository portal", "repository_portal.search", {},
     "Search certificates, revocation lists and documents (Repository username and password)."),
)
SERVICES: tuple[tuple[str, str, str, dict[str, Any], str], ...] = (
    ("CA certificates", "GET", "ca_api.list_ca_certificates", {}, "The hierarchy's certificates, for chains."),
    ("Ad hoc Device CSR (SEC Appendix M)", "POST", "devicecsr.adhoc_csr", {"version": "1.0"}, "XML web service."),
    ("Device CSR batch (SEC Appendix M)", "POST", "devicecsr.submit_batch", {"version": "1.0"},
     "XML web service; poll CSRBatchResult?BatchId=n for the result."),
    ("Certificate search (SEC Appendix O)", "POST", "repository_xml.certificate_search", {},
     "XML web service (apikey query parameter)."),
    ("Certificate retrieval (SEC Appendix O)", "POST", "repository_xml.retrieve_certificate", {},
     "XML web service (apikey query parameter)."),
    ("Health", "GET", "health", {}, "Answers 200 while the service runs."),
)
# Blueprint -> the title of the API its OpenAPI document describes.
API_TITLES = {"ra_api": "RA JSON API", "repository_api": "Repository JSON API"}


@dataclass(frozen=True)
class Link:
    title: str
    href: str
    description: str
    method: str = "GET"


def links() -> dict[str, list[Link]]:
    documents = sorted((rule for rule in current_app.url_map.iter_rules()
                        if rule.rule.endswith("/openapi.json") and not rule.arguments), key=lambda rule: rule.rule)
    return {
        "portals": [Link(title, url_for(endpoint, **arguments), text) for title, endpoint, arguments, text in PORTALS],
        "api_documents": [Link(API_TITLES.get(rule.endpoint.split(".")[0], rule.endpoint), rule.rule,
                               "OpenAPI 3.1 document") for rule in documents],
        "services": [Link(title, url_for(endpoint, **arguments), text, method)
                     for title, method, endpoint, arguments, text in SERVICES],
    }


def landing() -> Response | str:
    listed = links()
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        body: dict[str, Any] = {"service": "SMKI sandbox"}
        body.update({kind: [asdict(link) for link in entries] for kind, entries in listed.items()})
        return jsonify(body)
    return render_template("landing.html", **listed)
