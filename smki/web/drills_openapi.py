"""The OpenAPI 3.1 document of the drills API, served at ``/api/v1/drills/openapi.json``. The start request's
body is described by the very schema the route checks it against (:func:`smki.web.drills.create_body`)."""

from __future__ import annotations

from typing import Any

PREFIX = "/api/v1/drills"
PROBLEM = {"$ref": "#/components/responses/Problem"}
RUN = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}}
EMPTY_BODY = {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "properties": {}}}}}
WHO = "the SMKI PMA, a DCC operator or the Code Administrator (others: AZ:DRL01)"

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/scenarios"): {"summary": "The recovery scenarios (policies/recovery/)",
                            "responses": {"200": {"description": "scenario ids and titles"}}},
    ("get", "/runs"): {"summary": "Drill runs, newest first", "responses": {"200": {"description": "runs"}}},
    ("post", "/runs"): {"summary": "Start a drill: a scenario run for real on a drill world of its own",
                        "requestBody": "create", "responses": {"202": {"description": "started", **RUN}}},
    ("get", "/runs/{run_id}"): {"summary": "A run's progress (phase, step, devices done, rate, time left) and steps",
                                "responses": {"200": {"description": "the run", **RUN}}},
    ("post", "/runs/{run_id}/pause"): {"summary": "Pause before the next step", "requestBody": EMPTY_BODY,
                                       "responses": {"200": {"description": "the run's status"}}},
    ("post", "/runs/{run_id}/resume"): {"summary": "Resume a paused, failed or interrupted run from its first "
                                        "unfinished step", "requestBody": EMPTY_BODY,
                                        "responses": {"202": {"description": "resumed", **RUN}}},
    ("get", "/runs/{run_id}/record"): {"summary": "The drill record (JSON): steps, devices, residual exposure",
                                       "responses": {"200": {"description": "the record"}}},
    ("post", "/runs/{run_id}/report"): {"summary": "Produce the drill report (HTML, PDF, JSON, evidence zip) and "
                                        "lodge it in the Repository for the PMA", "requestBody": EMPTY_BODY,
                                        "responses": {"201": {"description": "links to each format"}}},
    ("get", "/runs/{run_id}/report/{fmt}"): {"summary": "Download the report: html, pdf, json or evidence",
                                             "responses": {"200": {"description": "the file"}}},
    ("get", "/openapi.json"): {"summary": "This document", "public": True,
                               "responses": {"200": {"description": "OpenAPI 3.1"}}},
}


def _parameters(path: str) -> list[dict[str, Any]]:
    out = []
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            schema = {"type": "integer", "minimum": 1} if name.endswith("_id") else \
                {"enum": ["html", "pdf", "json", "evidence"]}
            out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def document(create_body: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), spec in OPERATIONS.items():
        operation: dict[str, Any] = {
            "summary": spec["summary"], "description": f"Who may call it: {'anyone' if spec.get('public') else WHO}.",
            "tags": ["Drills"],
            "operationId": f"drills_{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": _parameters(path), "responses": {**spec["responses"], "4XX": PROBLEM, "5XX": PROBLEM}}
        body = spec.get("requestBody")
        if body == "create":
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": create_body}}}
        elif body is not None:
            operation["requestBody"] = body
        if spec.get("public"):
            operation["security"] = []
        paths.setdefault(PREFIX + path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMKI sandbox recovery drills API", "version": "1.0.0",
                 "description": "Recovery drills (SEC L10, Appendix L): start a compromise scenario, watch it, pause "
                                "and resume it, read its record and report. Errors are application/problem+json "
                                "with a code (DR: drill, FM: format, AU: not authenticated, AZ: not authorised)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"iki": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (smki_<id>_<secret>)"},
                "iki": {"type": "mutualTLS", "description": "An IKI client certificate"}},
            "schemas": {
                "Problem": {"type": "object", "required": ["code", "status", "detail"], "properties": {
                    "code": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "field": {"type": "string"}}},
                "Run": {"type": "object", "properties": {
                    "run_id": {"type": "integer"}, "scenario": {"type": "string"},
                    "status": {"enum": ["created", "running", "paused", "completed", "failed"]},
                    "phase": {"type": ["string", "null"]}, "step": {"type": ["string", "null"]},
                    "steps_done": {"type": "integer"}, "steps_total": {"type": "integer"},
                    "devices_done": {"type": "integer"}, "devices_total": {"type": "integer"},
                    "rate": {"type": ["number", "null"]}, "seconds_left": {"type": ["number", "null"]},
                    "steps": {"type": "array", "items": {"type": "object"}}}}},
            "responses": {"Problem": {"description": "a refusal, with its code", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
        },
    }
