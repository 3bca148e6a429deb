"""Every JSON body of every RA API route is checked against the schema the OpenAPI document gives for it:
a wrong type, a missing or an unknown field is a coded 400 naming every bad field; a body that is not a
JSON object is a coded 400; arbitrary JSON never gets a 5xx."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import func, select

from smki.ra.forms import forms_dir, load_forms
from smki.ra.models import AuditRecord, Organisation
from smki.ra.web.bodies import unstorable_text
from tests.ra.conftest import SUPPLIER_A_IS, Population, auth, org_csr_pem

P = "/api/v1/ra"
JSON = "application/json"
BODY_CODES = ("FM:API01", "FM:API06", "FM:FRM01")


def problem(response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    return response.get_json()


def fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {error["field"] for error in problem(response)["errors"]}


def test_srept_result_given_as_text_is_refused_and_records_nothing(client, ra, population: Population) -> None:  # type: ignore[no-untyped-def]
    """Issue 8 item 7: {"passed": "true"} was recorded as a failed SREPT with 200."""
    def state() -> tuple[object, int]:
        with ra.database.session() as session:
            party = session.get(Organisation, population.supplier_b)
            assert party is not None
            records = session.scalar(select(func.count()).select_from(AuditRecord)
                                     .where(AuditRecord.action == "party.srept"))
            return party.srept_passed_at, int(records or 0)

    before = state()
    response = client.post(f"{P}/parties/{population.supplier_b}/srept", headers=auth(population.operator),
                           json={"passed": "true"})
    assert response.status_code == 400 and problem(response)["code"] == "FM:API06"
    assert fields(response) == {"passed"}
    missing = client.post(f"{P}/parties/{population.supplier_b}/srept", headers=auth(population.operator), json={})
    assert missing.status_code == 400 and fields(missing) == {"passed"}
    assert state() == before
    failed = client.post(f"{P}/parties/{population.supplier_b}/srept", headers=auth(population.operator),
                         json={"passed": False})
    assert failed.status_code == 200 and failed.get_json()["srept_passed"] is False


def test_every_bad_field_is_named_at_once(client, population: Population) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"{P}/csr/device", headers=auth(population.aro_a),
                           json={"csr": 5, "subscriber": "1", "manufacturer": 1.5, "colour": "blue"})
    assert response.status_code == 400 and problem(response)["code"] == "FM:API06"
    assert fields(response) == {"csr", "subscriber", "manufacturer", "colour"}
    verification = client.post(f"{P}/submissions/1/verification", headers=auth(population.operator),
                               json={"checks": {"identity_verified": "yes"}, "note": None})
    assert verification.status_code == 400 and fields(verification) == {"checks/identity_verified", "note"}


NOT_JSON_OBJECTS = [(b"not json", JSON), (b"[1, 2]", JSON), (b'"text"', JSON), (b"null", JSON), (b"\xff\xfe{", JSON),
                    (b"[" * 100_000, JSON), (b'{"passed": true}', "text/plain")]


def test_a_body_that_is_not_a_json_object_is_a_coded_400(client, population: Population) -> None:  # type: ignore[no-untyped-def]
    for data, content_type in NOT_JSON_OBJECTS:
        response = client.post(f"{P}/parties/{population.supplier_b}/srept", headers=auth(population.operator),
                               data=data, content_type=content_type)
        assert response.status_code == 400 and problem(response)["code"] == "FM:API01", data[:20]


def test_values_no_database_can_hold_are_a_coded_400(client, population: Population) -> None:  # type: ignore[no-untyped-def]
    too_big = client.post(f"{P}/csr/device", headers=auth(population.aro_a),
                          json={"csr": "x", "subscriber": 2**63})
    assert too_big.status_code == 400 and fields(too_big) == {"subscriber"}
    nomination = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a),
                             json={"name": "Nul\u0000Name", "email": "n@alpha.example", "scopes": ["organisation"],
                                   "acts_for": [2**40]})
    assert nomination.status_code == 400 and problem(nomination)["code"] == "FM:API06"
    assert fields(nomination) == {"name"}
    surrogate = client.post(f"{P}/forms/party_registration", data=b'{"legal_name": "\\ud800 Ltd"}',
                            content_type=JSON)
    assert surrogate.status_code == 400 and fields(surrogate) == {"legal_name"}
    out_of_range = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a),
                               json={"name": "Nia", "email": "n@alpha.example", "scopes": ["organisation"],
                                     "acts_for": [2**40]})
    assert out_of_range.status_code == 400 and fields(out_of_range) == {"acts_for/0"}


def test_the_party_of_a_nomination_comes_from_the_path_only(client, population: Population) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"{P}/parties/{population.supplier_a}/aros", headers=auth(population.sro_a), json={
        "organisation_id": population.supplier_b, "name": "Nia", "email": "n@alpha.example",
        "scopes": ["organisation"], "acts_for": [population.supplier_a]})
    assert response.status_code == 400 and fields(response) == {"organisation_id"}


# --- the document and the validation, over arbitrary JSON -------------------------------------------------

@dataclass(frozen=True)
class Route:
    path: str                   # as the OpenAPI document names it
    url: str                    # with this population's values
    caller: str                 # a caller who may use it, so that the body is what decides


def routes(population: Population, serial: str) -> list[Route]:
    a, b = population.supplier_a, population.supplier_b
    listed = [
        Route("/csr/organisation", "/csr/organisation", "aro_a"),
        Route("/csr/device", "/csr/device", "aro_a"),
        Route("/certificates/{serial}/rejection", f"/certificates/{serial}/rejection", "aro_a"),
        Route("/parties/{organisation_id}/aros", f"/parties/{a}/aros", "sro_a"),
        Route("/parties/{organisation_id}/aros/{appointment_id}/withdrawal",
              f"/parties/{a}/aros/{population.aro_a_device_only.appointment_id}/withdrawal", "sro_a"),
        Route("/submissions/{submission_id}/verification", "/submissions/1/verification", "operator"),
        Route("/submissions/{submission_id}/approval", "/submissions/2/approval", "operator"),
        Route("/submissions/{submission_id}/rejection", "/submissions/3/rejection", "operator"),
        Route("/parties/{organisation_id}/srept", f"/parties/{b}/srept", "operator"),
        Route("/submissions/{submission_id}/withdrawal", "/submissions/4/withdrawal", "sro_a"),
    ]
    return listed + [Route("/forms/{name}", f"/forms/{name}", "sro_a") for name in load_forms(forms_dir())]


def documented_schema(document: dict[str, Any], route: Route) -> dict[str, Any]:
    """The JSON Schema the OpenAPI document gives for the route's body (for a form: the form named)."""
    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    if route.path == "/forms/{name}":
        return resolve({"$ref": f"#/components/schemas/form_{route.url.rsplit('/', 1)[1]}"})
    body = resolve(document["paths"][P + route.path]["post"]["requestBody"])
    return resolve(body["content"][JSON]["schema"])


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    return st.recursive(leaves, lambda children: st.lists(children, max_size=3)
                        | st.dictionaries(st.text(), children, max_size=3), max_leaves=8)


@dataclass(frozen=True)
class Surface:
    routes: list[Route]
    document: dict[str, Any]
    generated: dict[tuple[str, GenerationMode], st.SearchStrategy[Any]]  # requests schemathesis makes from it

    def bodies(self, route: Route) -> st.SearchStrategy[tuple[str, Any]]:
        """Bodies conforming to the document and not (schemathesis), arbitrary JSON, the schema's own field
        names with arbitrary values, and bytes that are not JSON at all."""
        names = sorted(documented_schema(self.document, route).get("properties", {}))
        keys = (st.sampled_from(names) | st.text()) if names else st.text()
        generated = [self.generated[(route.path, mode)] for mode in GenerationMode]
        return st.one_of(*[cases.filter(lambda case: case.media_type == JSON).map(_generated) for cases in generated],
                         json_values().map(lambda value: ("json", value)),
                         st.dictionaries(keys, json_values(), max_size=6).map(lambda value: ("json", value)),
                         st.binary(max_size=64).map(lambda value: ("raw", value)))


def _generated(case: Any) -> tuple[str, Any]:
    return ("generated", case.body) if isinstance(case.body, (dict, list, str, int, float, bool, bytes)) \
        or case.body is None else ABSENT


@pytest.fixture
def surface(ra, population: Population, app) -> Surface:  # type: ignore[no-untyped-def]
    """Four open submissions to decide on, a released certificate, the routes and the OpenAPI document."""
    from smki.ra.forms import FormService

    aro = ra.authenticate_token(population.aro_a.token)
    serial = ra.submit_organisation_csr(aro, org_csr_pem(SUPPLIER_A_IS)).serial
    sro = ra.authenticate_token(population.sro_a.token)
    for n in range(4):
        FormService(ra).submit("aro_nomination", {"organisation_id": population.supplier_a, "name": f"Nominee {n}",
                                                  "email": f"n{n}@alpha.example", "scopes": ["organisation"],
                                                  "acts_for": [population.supplier_a]}, sro)
    document = app.test_client().get(f"{P}/openapi.json").get_json()
    schema = schemathesis.openapi.from_wsgi(f"{P}/openapi.json", app)
    listed = routes(population, serial)
    generated = {(route.path, mode): schema[P + route.path]["POST"].as_strategy(generation_mode=mode)
                 for route in listed for mode in GenerationMode}
    return Surface(listed, document, generated)


ABSENT = ("absent", None)  # schemathesis sent no body at all


def send(client, route: Route, population: Population, kind: str, value: Any):  # type: ignore[no-untyped-def]
    data = b"" if kind == "absent" else value if isinstance(value, bytes) else json.dumps(value)
    return client.post(P + route.url, headers=auth(getattr(population, route.caller)), data=data, content_type=JSON)


BOUNDED = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                          HealthCheck.filter_too_much])


@BOUNDED
@given(data=st.data())
def test_arbitrary_json_gets_a_coded_4xx_or_success_never_a_5xx(client, population: Population,  # type: ignore[no-untyped-def]
                                                                 surface: Surface, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(surface.routes))
    kind, value = data.draw(surface.bodies(route))
    response = send(client, route, population, kind, value)
    assert response.status_code < 500, (route.path, value, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json" and problem(response)["code"]
    event(f"{response.status_code} {(response.get_json(silent=True) or {}).get('code', '')}")


@BOUNDED
@given(data=st.data())
def test_a_body_is_refused_for_its_shape_exactly_when_the_document_says_so(  # type: ignore[no-untyped-def]
        client, population: Population, surface: Surface, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(surface.routes))
    kind, value = data.draw(surface.bodies(route).filter(lambda drawn: not isinstance(drawn[1], bytes)))
    assume(not unstorable_text(value))  # text no database can hold is refused whatever the schema says
    response = send(client, route, population, kind, value)
    refused_for_shape = response.status_code == 400 and problem(response)["code"] in BODY_CODES
    schema = documented_schema(surface.document, route)
    if kind == "absent":
        document_refuses = bool(schema.get("required"))  # the body is required exactly when a field is
    else:
        document_refuses = not isinstance(value, dict) or not Draft202012Validator(schema).is_valid(value)
    event("the document refuses" if document_refuses else "the document accepts")
    assert refused_for_shape == document_refuses, (route.path, value, response.get_data(as_text=True))
