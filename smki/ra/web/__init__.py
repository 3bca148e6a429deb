"""The RA's web front end: the JSON API (``/api/v1/ra``) and the portal (``/portal``). Both only parse
and authenticate, then hand over to :mod:`smki.ra`."""

from __future__ import annotations

from typing import Literal, overload

from flask import Flask, current_app, request

from smki.ra.identity import Principal
from smki.ra.service import RegistrationAuthority


def authority() -> RegistrationAuthority:
    """One RA per application (it caches the CA and the policy files)."""
    app: Flask = current_app
    if "smki_ra" not in app.extensions:
        app.extensions["smki_ra"] = RegistrationAuthority(app.config["SMKI_INSTANCE"])
    return app.extensions["smki_ra"]

def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None

def client_certificate() -> bytes | None:
    """The TLS client certificate, as the WSGI server passes it: werkzeug's ``SSL_CLIENT_CERT`` (PEM), or
    the peer certificate of gunicorn's TLS socket."""
    pem = request.environ.get("SSL_CLIENT_CERT")
    if pem:
        return pem.encode() if isinstance(pem, str) else pem
    sock = request.environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is not None:
        try:
            der = getpeercert(binary_form=True)
        except ValueError:
            return None
        return der or None
    return None

@overload
def caller(optional: Literal[False] = False) -> Principal: ...


@overload
def caller(optional: bool) -> Principal | None: ...


def caller(optional: bool = False) -> Principal | None:
    """The authenticated caller: an API token (Bearer), else an IKI client certificate; with ``optional``,
    None when neither was presented (otherwise that is ``AU:TOK01``)."""
    ra = authority()
    token = bearer_token()
    if token:
        return ra.authenticate_token(token)
    certificate = client_certificate()
    if certificate:
        return ra.authenticate_certificate(certificate)
    if optional:
        return None
    return ra.authenticate_token(None)  # raises AU:TOK01
