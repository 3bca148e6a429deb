"""What the Repository's blueprints share: the store for this app, credentials, the request log."""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import current_app, g, request

from repository.access import Holder, RepositoryAccess
from repository.crls import RevocationLists
from repository.documents import DocumentStore
from repository.request_log import request_log_for
from repository.settings import RepositorySettings, load_repository_settings
from repository.store import CertificateRepository
from smki.core.db import Database

SESSION_COOKIE = "smki_repository_session"


def _instance() -> Any:
    return current_app.config["SMKI_INSTANCE"]


def database() -> Database:
    return _instance().database


def settings() -> RepositorySettings:
    return load_repository_settings(_instance().policies.directory)


def certificates() -> CertificateRepository:
    return CertificateRepository(database(), settings())


def access() -> RepositoryAccess:
    return RepositoryAccess(database(), settings())


def documents() -> DocumentStore:
    return DocumentStore(database())


def revocation_lists() -> RevocationLists:
    return RevocationLists(database())


def dccboxed_compatible() -> bool:
    """The DCC Boxed compatibility setting: app config ``SMKI_DCCBOXED``, else the instance's settings."""
    configured = current_app.config.get("SMKI_DCCBOXED")
    if configured is not None:
        return bool(configured)
    return bool(_instance().settings.dccboxed)


def audit_reference() -> str:
    """In the shape DCC Boxed uses (``1234567890-abc123456``): seconds, then a random part."""
    return f"{int(time.time())}-{secrets.token_hex(5)[:9]}"


def record_request(reference: str, holder: Holder | None, operation: str, code: int, detail: str | None = None) -> None:
    """Into the request log, written in batches off the request path (:mod:`repository.request_log`)."""
    request_log = request_log_for(database(), settings().web_service.request_log)
    request_log.record(reference, holder.name if holder else None, operation, code, detail)


def api_key_from_request() -> str | None:
    return request.args.get("apikey") or request.headers.get("X-API-Key")


def current_holder() -> Holder | None:
    """The caller, by API key (query ``apikey`` or header ``X-API-Key``) or portal session cookie."""
    if "repository_holder" in g:
        return g.repository_holder
    holder = access().authenticate_api_key(api_key_from_request(), dccboxed_compatible=dccboxed_compatible())
    if holder is None:
        token = request.cookies.get(SESSION_COOKIE)
        found = access().session_holder(token) if token else None
        if found is not None:
            g.repository_username = found[0]
            holder = found[1]
    g.repository_holder = holder
    return holder
