"""Read-only CA endpoints: the hierarchy's certificates, for anyone building a chain."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, current_app

from smki.ca.authority import CA_NAMES
from smki.core.errors import SmkiError

blueprint = Blueprint("ca_api", __name__, url_prefix="/api/v1/ca")


@blueprint.get("/certificates")
def list_ca_certificates():
    hierarchy = current_app.config["SMKI_INSTANCE"].hierarchy
    out = []
    for name in CA_NAMES:
        certificate = hierarchy.certificate(name)
        out.append({"name": name, "serial": f"{certificate.serial_number:032X}",
                    "subject": certificate.subject.rfc4514_string(),
                    "href": f"/api/v1/ca/certificates/{name}"})
    return {"certificates": out}


@blueprint.get("/certificates/<name>")
def ca_certificate(name: str):
    if name not in (*CA_NAMES, "recovery"):
        raise SmkiError("FM:CA01", f"there is no CA certificate called {name!r}; "
                        f"use one of {', '.join(CA_NAMES)}")
    certificate = current_app.config["SMKI_INSTANCE"].hierarchy.certificate(name)
    return Response(certificate.public_bytes(serialization.Encoding.PEM), mimetype="application/x-pem-file")
