"""The OpenAPI document of the SREPT API (``/api/v1/srept/openapi.json``), its bodies from the same JSON Schema
files the API checks requests against, so the two cannot disagree."""

from __future__ import annotations

from typing import Any

from smki.srept.schemas import body_schema

RUN_ID = {"name": "run_id", "in": "path", "required": True,
          "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}
INTERACTION_ID = {**RUN_ID, "name": "interaction_id"}
PROBLEM = {"description": "a refusal: an RFC 9457 problem document with its code",
           "content": {"application/problem+json": {"schema": {"type": "object"}}}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": body_schema(name)}}}


def _operation(summary: str, *, parameters: tuple[dict[str, Any], ...] = (), body: str | None = None,
               ok: str = "200", media: str = "application/json") -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "parameters": list(parameters),
                                 "responses": {ok: {"description": "done", "content": {media: {}}},
                                               "4XX": PROBLEM}}
    if body:
        operation["requestBody"] = _body(body)
    return operation


def openapi_document() -> dict[str, Any]:
    runs = "/api/v1/srept/runs"
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMKI sandbox SREPT API", "version": "1",
                 "description": "SREPT rehearsal runs, progress, interactions, evidence packs and the pass. "
                                "Authenticate with an RA API token (Authorization: Bearer) or the IKI client "
                                "certificate. See docs/srept.md."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            runs: {
                "post": _operation("Open a run for a Party (an RA operator or the Party's SRO)", body="open_run",
                                   ok="201"),
                "get": _operation("The Party's runs", parameters=({
                    "name": "organisation_id", "in": "query", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}},)),
            },
            f"{runs}/{{run_id}}": {"get": _operation("Progress: each scenario not run, passed or failed",
                                                     parameters=(RUN_ID,))},
            f"{runs}/{{run_id}}/closure": {"post": _operation("Close the run without a pass", parameters=(RUN_ID,))},
            f"{runs}/{{run_id}}/interactions": {"get": _operation("The run's interactions", parameters=(RUN_ID,))},
            f"{runs}/{{run_id}}/interactions/{{interaction_id}}": {
                "get": _operation("One interaction with its bodies (base64)", parameters=(RUN_ID, INTERACTION_ID))},
            f"{runs}/{{run_id}}/attestations": {
                "post": _operation("An RA operator attests a scenario done outside HTTP", parameters=(RUN_ID,),
                                   body="attestation", ok="201")},
            f"{runs}/{{run_id}}/pack": {"get": _operation("The evidence pack (zip)", parameters=(RUN_ID,),
                                                          media="application/zip")},
            f"{runs}/{{run_id}}/pass": {
                "post": _operation("An RA operator records the Party's SREPT pass on the strength of the run",
                                   parameters=(RUN_ID,), body="record_pass")},
        },
    }
