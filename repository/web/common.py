"""What the Repository's blueprints share: the store for this app, credentials, the request log."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from typing import Any

from flask import current_app, g, request

from repository.access import Holder, RepositoryAccess
from repository.crls import RevocationLists
from repository.documents import DocumentStore
from repository.models import RepositoryRequestLog
from repository.settings import RepositorySettings, load_repository_settings
from repository.store import CertificateRepository
from smki.core.db import Database

SESSION_COOKIE = "smki_repository_session"


def _instance() -> Any:
    return current_app.config["SMKI_INSTANCE"]


def database() -> Database:
    return _instance().database  # type: ignore[no-any-return]


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
    """The DCC Boxed compatibility setting: app config ``SMKI_DCCBOXED``, else the environment."""
    configured = current_app.config.get("SMKI_DCCBOXED")
    if configured is not None:
        return bool(configured)
    return os.environ.get("SMKI_DCCBOXED", "").lower() in ("1", "true", "yes", "on")


def audit_reference() -> str:
    """In the shape DCC Boxed uses (``1234567890-abc123456``): seconds, then a random part."""
    return f"{int(time.time())}-{secrets.token_hex(5)[:9]}"


def record_request(reference: str, holder: Holder | None, operation: str, code: int, detail: str | None = None) -> None:
    with database().session() as session:
        session.add(RepositoryRequestLog(audit_reference=reference, holder=holder.name if holder else None,
                                         operation=operation, response_code=code, at=dt.datetime.now(dt.UTC),
                                         detail=detail[:1000] if detail else None))


def api_key_from_request() -> str | None:
    return request.args.get("apikey") or request.headers.get("X-API-Key")


def current_holder() -> Holder | None:
    """The caller, by API key (query ``apikey`` or header ``X-API-Key``) or portal session cookie."""
    if "repository_holder" in g:
        return g.repository_holder  # type: ignore[no-any-return]
    holder = access().authenticate_api_key(api_key_from_request(), dccboxed_compatible=dccboxed_compatible())
    if holder is None:
        token = request.cookies.get(SESSION_COOKIE)
        found = access().session_holder(token) if token else None
        if found is not None:
            g.repository_username = found[0]
            holder = found[1]
    g.repository_holder = holder
    return holder
