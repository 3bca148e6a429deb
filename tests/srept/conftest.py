"""SREPT fixtures: a Party that has not passed SREPT (as a Party comes to rehearse), its people, and the RA's
population and app (another Party, the DCC, an RA operator) around it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smki.ra.population import Member, PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.srept.recording import flush_all
from tests.ra.conftest import Population, app, auth, client, population, ra  # noqa: F401 - the RA's fixtures

NEWCOMER_IS = "90B3D51F30F00001"
NEWCOMER_GS = "90B3D51F30F00002"


@pytest.fixture(autouse=True)
def recorded_before_the_database_goes(database_url: str) -> Iterator[None]:
    """Write every interaction still waiting before the test's database (a PostgreSQL schema) is dropped."""
    yield
    flush_all()


@dataclass(frozen=True)
class Newcomer:
    party: int
    aro: Member
    sro: Member


@pytest.fixture
def newcomer(ra: RegistrationAuthority, population: Population) -> Newcomer:  # noqa: F811 - the RA's fixtures
    build = PopulationBuilder(ra)
    party = build.party("Newcomer Energy Ltd", "large_supplier", [("IS", NEWCOMER_IS), ("GS", NEWCOMER_GS)],
                        srept=False, authorised=())
    return Newcomer(party, build.member(party, "Nina Newcomer-ARO", "aro", scopes=("organisation", "device")),
                    build.member(party, "Sam Newcomer-SRO", "sro"))


def open_run(http, operator: Member, party: int) -> dict:  # type: ignore[no-untyped-def]
    response = http.post("/api/v1/srept/runs", json={"organisation_id": party}, headers=auth(operator))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def states(http, member: Member, run_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = http.get(f"/api/v1/srept/runs/{run_id}", headers=auth(member))
    assert response.status_code == 200, response.get_json()
    return {s["id"]: s["state"] for s in response.get_json()["scenarios"]}
