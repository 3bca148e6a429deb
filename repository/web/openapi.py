"""The OpenAPI 3.1 document of the Repository's JSON API (kept apart from the RA's, under our prefix)."""

from __future__ import annotations

from typing import Any

PREFIX = "/api/v1/repository"


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


SERIAL = {"name": "serial", "in": "path", "required": True, "description": "certificate serial, hexadecimal",
          "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{1,64}$"}}
ISSUER = _query("issuer", "issuer DN (RFC 4514), needed only if two issuers share the serial")
PROBLEM = {"description": "a coded refusal", "content": {"application/problem+json": {
    "schema": {"$ref": "#/components/schemas/Problem"}}}}
STATUS_SCHEMA = {"type": "string", "enum": ["P", "I", "N", "E", "R"],
                 "description": "P pending, I in use, N not in use, E expired, R revoked"}


def _list_path(name: str, title: str) -> dict[str, Any]:
    return {"get": {"summary": f"The current {title} (DER)", "tags": ["revocation"], "security": [],
                    "responses": {"200": {"description": title, "headers": {
                        "ETag": {"schema": {"type": "string"}}, "Last-Modified": {"schema": {"type": "string"}}},
                        "content": {"application/pkix-crl": {"schema": {"type": "string", "format": "binary"}}}},
                        "304": {"description": "not modified"}, "404": PROBLEM}}}


def openapi_document() -> dict[str, Any]:
    search_parameters = [
        _query("serial", "certificate serial, hexadecimal"), _query("issuer", "issuer DN (RFC 4514)"),
        _query("subject_eui", "Organisation subject EUI-64, e.g. 90-B3-D5-1F-30-01-00-00"),
        _query("device_id", "Device ID (EUI-64)"),
        _query("role", "decimal Remote Party Role", {"type": "integer"}),
        _query("usage", "key usage", {"type": "string", "enum": ["DS", "KA"]}),
        _query("status", "certificate status", STATUS_SCHEMA),
        _query("kind", "certificate kind", {"type": "string", "enum": ["organisation", "device", "oca", "dca"]}),
        _query("manufacturing_flag", "ManufacturingFlag", {"type": "boolean"}),
        *[_query(name, "ISO 8601 bound (from: inclusive, until: exclusive)", {"type": "string", "format": "date-time"})
          for name in ("not_before_from", "not_before_until", "not_after_from", "not_after_until",
                       "lodged_from", "lodged_until")],
        _query("limit", "page size (default 100, at most 1000)", {"type": "integer", "minimum": 1}),
        _query("cursor", "next_cursor of the previous page"),
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "SMKI sandbox Repository API", "version": "1.0.0",
                 "description": "Search and retrieve certificates, the Organisation CRL and the ARL, and the "
                                "SMKI document set. The Appendix O XML service is at /services/."},
        "servers": [{"url": "/"}],
        "security": [{"apiKeyHeader": []}, {"apiKeyQuery": []}],
        "paths": {
            f"{PREFIX}/certificates": {"get": {
                "summary": "Search certificates (cursor pagination, lodging order)", "tags": ["certificates"],
                "parameters": search_parameters,
                "responses": {"200": {"description": "a page of results", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Page"}}}}, "400": PROBLEM, "401": PROBLEM}}},
            f"{PREFIX}/certificates/{{serial}}": {"get": {
                "summary": "One certificate's record; Accept: application/pkix-cert returns the DER",
                "tags": ["certificates"], "parameters": [SERIAL, ISSUER],
                "responses": {"200": {"description": "the record", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Certificate"}},
                    "application/pkix-cert": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": PROBLEM, "409": PROBLEM}}},
            f"{PREFIX}/certificates/{{serial}}/pem": {"get": {
                "summary": "Download as PEM", "tags": ["certificates"], "parameters": [SERIAL, ISSUER],
                "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {
                    "schema": {"type": "string"}}}}, "404": PROBLEM}}},
            f"{PREFIX}/certificates/{{serial}}/der": {"get": {
                "summary": "Download as DER", "tags": ["certificates"], "parameters": [SERIAL, ISSUER],
                "responses": {"200": {"description": "DER", "content": {"application/pkix-cert": {
                    "schema": {"type": "string", "format": "binary"}}}}, "404": PROBLEM}}},
            f"{PREFIX}/crl": _list_path("crl", "Organisation CRL"),
            f"{PREFIX}/arl": _list_path("arl", "Authority Revocation List"),
            f"{PREFIX}/{{list}}/{{number}}": {"get": {
                "summary": "A CRL or ARL by cRLNumber", "tags": ["revocation"], "security": [],
                "parameters": [{"name": "list", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": ["crl", "arl"]}},
                               {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "the list", "content": {"application/pkix-crl": {
                    "schema": {"type": "string", "format": "binary"}}}}, "404": PROBLEM}}},
            f"{PREFIX}/revocation-lists": {"get": {
                "summary": "cRLNumber, thisUpdate, nextUpdate and size of the current lists",
                "tags": ["revocation"], "security": [], "responses": {"200": {"description": "summary"}}}},
            f"{PREFIX}/documents": {
                "get": {"summary": "The newest version of every lodged document", "tags": ["documents"],
                        "responses": {"200": {"description": "documents"}, "401": PROBLEM}},
                "post": {"summary": "Lodge a document or a new version (SMKI PMA, Code Administrator)",
                         "tags": ["documents"], "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/DocumentLodging"}}}},
                         "responses": {"201": {"description": "lodged"}, "400": PROBLEM, "401": PROBLEM,
                                       "403": PROBLEM}}},
            f"{PREFIX}/documents/{{name}}": {"get": {
                "summary": "Every version of one document", "tags": ["documents"],
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "versions"}, "404": PROBLEM}}},
            f"{PREFIX}/documents/{{name}}/content": {"get": {
                "summary": "Download a document (newest version unless ?version=)", "tags": ["documents"],
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                               _query("version", "version number", {"type": "integer"})],
                "responses": {"200": {"description": "the document"}, "404": PROBLEM}}},
        },
        "components": {
            "securitySchemes": {"apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey"}},
            "schemas": {
                "Certificate": {"type": "object", "properties": {
                    "serial": {"type": "string"}, "issuer": {"type": "string"}, "subject": {"type": "string"},
                    "kind": {"type": "string"}, "status": STATUS_SCHEMA, "status_text": {"type": "string"},
                    "role": {"type": ["integer", "null"]}, "usage": {"type": ["string", "null"]},
                    "subject_eui": {"type": ["string", "null"]}, "device_id": {"type": ["string", "null"]},
                    "manufacturing_flag": {"type": "boolean"},
                    "not_before": {"type": "string", "format": "date-time"},
                    "not_after": {"type": "string", "format": "date-time"}, "sha256": {"type": "string"},
                    "lodged_at": {"type": "string", "format": "date-time"},
                    "lodged_by": {"type": ["string", "null"]},
                    "updated_at": {"type": "string", "format": "date-time"}, "links": {"type": "object"}}},
                "Page": {"type": "object", "properties": {
                    "certificates": {"type": "array", "items": {"$ref": "#/components/schemas/Certificate"}},
                    "next_cursor": {"type": ["string", "null"]}, "links": {"type": "object"}}},
                "DocumentLodging": {"type": "object", "required": ["name", "title", "media_type", "content_base64"],
                                    "properties": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
                                                   "title": {"type": "string"}, "media_type": {"type": "string"},
                                                   "file_name": {"type": "string"},
                                                   "content_base64": {"type": "string"},
                                                   "audience": {"description": "who may read it: 'all' (the "
                                                                "default) or Repository roles; others are "
                                                                "not shown it exists",
                                                                "oneOf": [{"const": "all"}, {
                                                                    "type": "array", "items": {
                                                                        "enum": ["sec_panel", "smki_pma"]}}]}}},
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "code": {"type": "string"}, "detail": {"type": "string"}, "field": {"type": ["string", "null"]}}},
            },
        },
    }
