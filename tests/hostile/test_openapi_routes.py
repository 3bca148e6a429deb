"""Every route of every OpenAPI document the app serves, driven with out-of-range and wrong-type values
for each path and query parameter and with random bodies: no answer is ever a 5xx (issue 8 item 5).

Two drivers: a fixed grid of the values that broke the service before (integers past the database's
range, past 64 bits, past Python's int-parsing limit, wrong types), and schemathesis, which generates
conforming and non-conforming requests from the documents themselves."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from werkzeug.routing import IntegerConverter

from tests.hostile.conftest import Served

SERVED_DOCUMENTS = {"/api/v1/ra/openapi.json", "/api/v1/repository/openapi.json", "/api/v1/drills/openapi.json",
                    "/api/v1/srept/openapi.json"}
# Past PostgreSQL's INTEGER, past 64 bits, past Python's 4,300-digit int() limit, and not numbers at all.
HOSTILE_VALUES = ["0", "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
                  "18446744073709551616", "9" * 40, "9" * 5000, "-1", "-9223372036854775809", "1.5", "1e9",
                  "0x10", "abc", " 1", "\u0661\u0662", "%", "\x00", "\u202e"]
EMPTY = ""
METHODS = ("get", "post", "put", "patch", "delete")
GRID_CALLERS = ("aro", "operator")


def _document(served: Served, path: str) -> dict[str, Any]:
    response = served.app.test_client().get(path)
    assert response.status_code == 200, path
    document: dict[str, Any] = response.get_json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def _plausible(parameter: dict[str, Any]) -> str:
    """A value that gets the request past routing, so the hostile one is the only thing wrong."""
    schema = parameter.get("schema", {})
    if "enum" in schema:
        return str(schema["enum"][0])
    return "1" if schema.get("type") == "integer" else "01"


def _send(served: Served, method: str, path: str, operation: dict[str, Any], hostile: tuple[str, str] | None,
          headers: dict[str, str]) -> tuple[int, str]:
    parameters = operation.get("parameters", [])
    path_values = {p["name"]: _plausible(p) for p in parameters if p["in"] == "path"}
    for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
        path_values.setdefault(name, "1")
    query: dict[str, str] = {}
    if hostile is not None:
        name, value = hostile
        if name in path_values:
            path_values[name] = value
        else:
            query[name] = value
    url = path.format(**{name: quote(value, safe="") for name, value in path_values.items()})
    if query:
        url += "?" + urlencode(query)
    body = json.dumps({}) if method != "get" else None
    response = served.app.test_client().open(url, method=method.upper(), headers=headers, data=body,
                                             content_type="application/json" if body else None)
    return response.status_code, f"{method.upper()} {url[:120]}"


def test_every_served_openapi_document_is_driven(served: Served) -> None:
    assert set(served.openapi_paths) >= SERVED_DOCUMENTS, served.openapi_paths


def test_out_of_range_and_wrong_type_parameters_get_a_coded_4xx_on_every_route(served: Served) -> None:
    failures = []
    for document_path in served.openapi_paths:
        for method, path, operation in _operations(_document(served, document_path)):
            names = [(p["name"], p["in"]) for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
            for name, place in names:
                values = HOSTILE_VALUES + ([EMPTY] if place == "query" else [])
                for value in values:
                    for caller in GRID_CALLERS:
                        status, what = _send(served, method, path, operation, (name, value), served.callers[caller])
                        if status >= 500:
                            failures.append(f"{status} {what} ({name}={value[:20]!r}, as {caller})")
    assert not failures, "\n".join(failures)


def test_the_reported_out_of_range_values_are_refused_with_a_coded_4xx(served: Served) -> None:
    client = served.app.test_client()
    operator, aro = served.callers["operator"], served.callers["aro"]
    for url, headers in (("/api/v1/ra/submissions/9223372036854775808", operator),
                         ("/api/v1/ra/submissions/2147483648", operator),
                         ("/api/v1/repository/crl/9223372036854775808", {}),
                         ("/api/v1/repository/arl/2147483648", {}),
                         ("/api/v1/repository/certificates?role=9223372036854775808", aro),
                         ("/api/v1/repository/certificates?role=2147483648", aro)):
        response = client.get(url, headers=headers)
        assert 400 <= response.status_code < 500, (url, response.status_code)
        problem = response.get_json()
        assert problem["code"].split(":")[0] in ("HT", "RP"), (url, problem)
        assert problem["detail"], url


def _schemathesis_cases(served: Served, document_path: str, mode: GenerationMode) -> list[str]:
    schema = schemathesis.openapi.from_wsgi(document_path, served.app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"{document_path} describes an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()

        @settings(max_examples=6, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode), caller=st.sampled_from(sorted(served.callers)))
        def drive(case: Any, caller: str) -> None:
            response = case.call(headers=served.callers[caller])
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.operation.label} as {caller}: path "
                                f"{case.path_parameters} query {case.query} body {str(case.body)[:200]}")

        try:
            drive()
        except Unsatisfiable:
            continue  # an operation with nothing to get wrong (no parameters, no body) has no negative case
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_generated_requests_from_every_openapi_document_never_get_a_5xx(served: Served,
                                                                        mode: GenerationMode) -> None:
    failures = [failure for document_path in served.openapi_paths
                for failure in _schemathesis_cases(served, document_path, mode)]
    assert not failures, "\n".join(failures)


def test_every_numbered_route_outside_the_documents_refuses_out_of_range_numbers(served: Served) -> None:
    """The portals and the Device CSR pages have routes no OpenAPI document lists; their numbers too."""
    failures = []
    client = served.app.test_client()
    for rule in served.app.url_map.iter_rules():
        converters = rule._converters
        numbered = {name for name, converter in converters.items() if isinstance(converter, IntegerConverter)}
        if not numbered:
            continue
        for value in HOSTILE_VALUES:
            url = rule.rule
            for name, converter in converters.items():
                choices = sorted(getattr(converter, "items", ())) or ["x"]
                argument = value if name in numbered else choices[0]
                url = re.sub(rf"<(?:[^<>]*:)?{name}>", quote(argument, safe=""), url)  # only %XX and [\w.~-]
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                for caller in GRID_CALLERS:
                    status = client.open(url, method=method, headers=served.callers[caller]).status_code
                    if status >= 500:
                        failures.append(f"{status} {method} {url[:120]} as {caller}")
    assert not failures, "\n".join(failures)
