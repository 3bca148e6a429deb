"""Hostile-input fixtures: the whole web application over a populated instance, and the callers it knows.

Every request goes through the Flask app in-process (WSGI): no network, no server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask

from repository.access import RepositoryAccess
from repository.request_log import flush_all
from smki.instance import Instance
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.web import create_app


@dataclass(frozen=True)
class Served:
    app: Flask
    callers: dict[str, dict[str, str]]  # who is calling -> the headers that say so
    openapi_paths: list[str]            # every OpenAPI document the app serves


def openapi_documents(app: Flask) -> list[str]:
    """Found from the URL map, so a document added later is driven too without editing this test."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.rule.endswith("/openapi.json") and not rule.arguments)


@pytest.fixture
def served(instance: Instance) -> Iterator[Served]:
    ra = RegistrationAuthority(instance)
    build = PopulationBuilder(ra)
    party = build.party("Alpha Energy Supply Ltd", "large_supplier", [("IS", "90B3D51F30A00001")])
    aro = build.member(party, "Ada ARO", "aro", scopes=("organisation", "device"))
    sro = build.member(party, "Sara SRO", "sro")
    operator = build.member(None, "Rita RA-Operator", "ra_operator")
    api_key = RepositoryAccess(instance.database).issue_api_key("party:ALPHA/aro:ada", may_lodge_documents=True)
    app = create_app(instance)
    app.extensions["smki_ra"] = ra
    callers = {
        "anonymous": {},
        "aro": {"Authorization": f"Bearer {aro.token}", "X-API-Key": api_key},
        "sro": {"Authorization": f"Bearer {sro.token}", "X-API-Key": api_key},
        "operator": {"Authorization": f"Bearer {operator.token}", "X-API-Key": api_key},
    }
    yield Served(app, callers, openapi_documents(app))
    flush_all()  # the request log's waiting rows, while the test's database still exists
