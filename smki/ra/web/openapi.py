"""The OpenAPI 3.1 document of the RA's JSON API, served at ``/api/v1/ra/openapi.json``. Every request body
is described by the very schema the route checks it against (:mod:`smki.ra.web.bodies`, and the JSON
Schemas of ``rapp_forms/`` for forms), so the document and the validation can never disagree."""

from __future__ import annotations

from typing import Any

from smki.ra.forms import forms_dir, load_forms
from smki.ra.web.bodies import BODIES, form_body

PREFIX = "/api/v1/ra"
PROBLEM = {"$ref": "#/components/responses/Problem"}
RELEASE = {"201": {"description": "issued, lodged in the Repository and returned",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Release"}}}}}
SUBMISSION = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}}}


def _json_body(name: str) -> dict[str, Any]:
    """The request body checked against ``BODIES[name]`` (required when the schema requires a field)."""
    return {"required": bool(BODIES[name]["required"]),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/body_{name}"}}}}


def _csr_body(kind: str) -> dict[str, Any]:
    body = _json_body(f"{kind}_csr")
    body["content"]["application/pkcs10"] = {"schema": {"type": "string", "format": "binary"}}
    return body


NOMINATION = {"required": True, "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/body_aro_nomination"}}}}


# (method, path) -> operation. "who" says which caller succeeds; every other caller is refused with a code.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/csr/organisation"): {"summary": "Submit an Organisation CSR", "who": "ARO (Organisation scope) "
                                    "acting for the Party whose User ID the CSR carries", "tag": "ARO",
                                    "requestBody": _csr_body("organisation"), "responses": RELEASE},
    ("post", "/csr/device"): {"summary": "Submit a Device CSR", "who": "ARO (Device scope) acting for the "
                              "Authorised Subscriber of record", "tag": "ARO", "requestBody": _csr_body("device"),
                              "responses": RELEASE},
    ("get", "/certificates/{serial}"): {"summary": "Download a certificate (PEM; ?format=der for DER)",
                                        "who": "ARO acting for the Subscriber of record", "tag": "ARO",
                                        "responses": {"200": {"description": "the certificate"}}},
    ("post", "/certificates/{serial}/rejection"): {
        "summary": "Reject an Organisation Certificate that does not match its CSR (revokes it)",
        "who": "ARO (Organisation scope) acting for the Subscriber", "tag": "ARO",
        "requestBody": _json_body("certificate_rejection"),
        "responses": {"200": {"description": "rejected and revoked"}}},
    ("get", "/parties/{organisation_id}/decisions"): {
        "summary": "CSR decisions for a Subscriber, with the rule that decided each",
        "who": "ARO acting for the Subscriber, scoped to the policy asked for (?policy=organisation|device)",
        "tag": "ARO", "responses": {"200": {"description": "decisions, newest first"}}},
    ("get", "/parties/{organisation_id}/aros"): {"summary": "The Party's AROs", "who": "the Party's SRO",
                                                 "tag": "SRO", "responses": {"200": {"description": "AROs"}}},
    ("post", "/parties/{organisation_id}/aros"): {
        "summary": "Nominate an ARO (an ARO Nomination Form)", "who": "the Party's SRO", "tag": "SRO",
        "requestBody": NOMINATION,
        "responses": {"202": {"description": "submitted for RA verification", **SUBMISSION}}},
    ("post", "/parties/{organisation_id}/aros/{appointment_id}/withdrawal"): {
        "summary": "Withdraw an ARO: takes effect at once and revokes every credential of the ARO",
        "who": "the Party's SRO", "tag": "SRO", "requestBody": _json_body("aro_withdrawal"),
        "responses": {"200": {"description": "withdrawn", **SUBMISSION}}},
    ("get", "/queue"): {"summary": "The verification queue (submitted and verified forms)", "who": "RA operator",
                        "tag": "RA operator", "responses": {"200": {"description": "open submissions"}}},
    ("post", "/submissions/{submission_id}/verification"): {
        "summary": "Confirm the form's verification checks (identity, BS 7858 screening, ...)",
        "who": "RA operator", "tag": "RA operator",
        "requestBody": _json_body("verification"),
        "responses": {"200": {"description": "verified", **SUBMISSION}}},
    ("post", "/submissions/{submission_id}/approval"): {
        "summary": "Approve a verified form (applies its effect; credentials are shown once)",
        "who": "RA operator", "tag": "RA operator", "requestBody": _json_body("none"),
        "responses": {"200": {"description": "approved", **SUBMISSION}}},
    ("post", "/submissions/{submission_id}/rejection"): {
        "summary": "Reject a form, with the reason", "who": "RA operator", "tag": "RA operator",
        "requestBody": _json_body("rejection"),
        "responses": {"200": {"description": "rejected", **SUBMISSION}}},
    ("post", "/parties/{organisation_id}/srept"): {
        "summary": "Record the Party's SREPT result", "who": "RA operator", "tag": "RA operator",
        "requestBody": _json_body("srept"),
        "responses": {"200": {"description": "recorded"}}},
    ("get", "/forms"): {"summary": "The RAPP forms", "who": "anyone", "tag": "Forms",
                        "responses": {"200": {"description": "forms"}}},
    ("get", "/forms/{name}"): {"summary": "A form's JSON Schema and workflow", "who": "anyone", "tag": "Forms",
                               "responses": {"200": {"description": "the form"}}},
    ("get", "/forms/{name}/print"): {"summary": "A blank form, rendered for print", "who": "anyone",
                                     "tag": "Forms", "responses": {"200": {"description": "HTML"}}},
    ("post", "/forms/{name}"): {"summary": "Submit a form (every bad field is reported at once)",
                                "who": "as the form says (submitted_by): anyone, the SRO, an ARO, ...",
                                "tag": "Forms", "requestBody": {"$ref": "#/components/requestBodies/any_form"},
                                "responses": {"201": {"description": "submitted", **SUBMISSION}}},
    ("get", "/submissions/{submission_id}"): {"summary": "A submission and its history",
                                              "who": "its submitter, the Party's SRO, or an RA operator",
                                              "tag": "Forms", "responses": {"200": {"description": "submission",
                                                                                    **SUBMISSION}}},
    ("get", "/submissions/{submission_id}/print"): {"summary": "A submission, rendered for print",
                                                    "who": "its submitter, the Party's SRO, or an RA operator",
                                                    "tag": "Forms", "responses": {"200": {"description": "HTML"}}},
    ("post", "/submissions/{submission_id}/withdrawal"): {"summary": "Withdraw one's own open submission",
                                                         "who": "its submitter", "tag": "Forms",
                                                         "requestBody": _json_body("none"),
                                                         "responses": {"200": {"description": "withdrawn",
                                                                               **SUBMISSION}}},
    ("get", "/openapi.json"): {"summary": "This document", "who": "anyone", "tag": "Meta",
                               "responses": {"200": {"description": "OpenAPI 3.1"}}},
}
PUBLIC = {("get", "/forms"), ("get", "/forms/{name}"), ("get", "/forms/{name}/print"), ("get", "/openapi.json")}


def _parameters(path: str) -> list[dict[str, Any]]:
    out = []
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:-1]
            integer = name.endswith("_id")
            out.append({"name": name, "in": "path", "required": True,
                        "schema": {"type": "integer"} if integer else {"type": "string"}})
    return out


def document() -> dict[str, Any]:
    forms = load_forms(forms_dir())
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), spec in OPERATIONS.items():
        operation: dict[str, Any] = {
            "summary": spec["summary"], "description": f"Who may call it: {spec['who']}.", "tags": [spec["tag"]],
            "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "parameters": _parameters(path),
            "responses": {**spec["responses"], "4XX": PROBLEM, "5XX": PROBLEM},
        }
        if "requestBody" in spec:
            operation["requestBody"] = spec["requestBody"]
        if (method, path) in PUBLIC or (path == "/forms/{name}" and method == "post"):
            operation["security"] = [{}, {"bearer": []}, {"iki": []}] if method == "post" else []
        paths.setdefault(PREFIX + path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMKI sandbox Registration Authority API", "version": "1.0.0",
                 "description": "The SMKI RA (SEC Appendix D, RAPP): Organisation and Device CSRs, certificates, "
                                "SRO and ARO lifecycle, RAPP forms. Errors are application/problem+json with a "
                                "SEC-style code (FM: format, CR: CSR content, IN: ineligible, UD: unknown device, "
                                "WF: workflow, AU: not authenticated, AZ: not authorised, CA: service). Every "
                                "JSON body is checked against the schema given here: a body that is not a JSON "
                                "object is FM:API01; a missing, unknown or mistyped field is FM:API06 (FM:FRM01 "
                                "for a RAPP form), with every bad field listed in errors. Text may not hold NUL "
                                "or unpaired surrogate characters (FM:API06)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"iki": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token bound to an ARO, SRO "
                           "or RA operator (smki_<id>_<secret>)"},
                "iki": {"type": "mutualTLS", "description": "An IKI client certificate issued by the sandbox "
                        "IKI CA (when the service runs with TLS)"}},
            "schemas": {
                "Problem": {"type": "object", "required": ["code", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "code": {"type": "string", "pattern": "^[A-Z]{2}:[A-Za-z0-9]+$", "maxLength": 10},
                    "detail": {"type": "string"}, "field": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string"}, "field": {"type": ["string", "null"]},
                        "detail": {"type": "string"}}}}}},
                "Release": {"type": "object", "properties": {
                    "serial": {"type": "string"}, "profile": {"type": "string"}, "certificate": {"type": "string"},
                    "lodged": {"type": "boolean"}, "href": {"type": "string"},
                    "decision": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                  "rule": {"type": "string"},
                                                                  "message": {"type": "string"},
                                                                  "manufacturing_flag": {"type": "boolean"}}}}},
                "Submission": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "form": {"type": "string"},
                    "status": {"enum": ["submitted", "verified", "approved", "rejected", "withdrawn"]},
                    "payload": {"type": "object"}, "result": {"type": ["object", "null"]},
                    "history": {"type": "array"}, "credentials": {"type": "object"}}},
                **{f"form_{name}": form.schema for name, form in forms.items()},
                **{f"body_{name}": schema for name, schema in BODIES.items()},
                "body_aro_nomination": form_body(forms["aro_nomination"], ("organisation_id",)),
            },
            "requestBodies": {
                **{name: {"required": True, "content": {"application/json": {"schema": {
                    "$ref": f"#/components/schemas/form_{name}"}}}} for name in forms},
                "any_form": {"required": True, "description": "the fields of the form named in the path, as its "
                         "schema (GET /forms/{name}) gives them", "content": {"application/json": {"schema": {
                             "anyOf": [{"$ref": f"#/components/schemas/form_{name}"} for name in forms]}}}},
            },
            "responses": {"Problem": {"description": "a refusal with its SEC-style code",
                                      "content": {"application/problem+json": {"schema": {
                                          "$ref": "#/components/schemas/Problem"}}}}},
        },
    }
