"""Every area registers its blueprint here, one line each, so areas never edit each other's modules."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from smki.web.ca_api import blueprint as ca_api

    __import__("smki.web.srept", fromlist=["register"]).register(app)  # SREPT API, pages; first: records requests
    app.register_blueprint(ca_api)
    __import__("repository.web", fromlist=["register"]).register(app)  # Appendix O XML, JSON API, portal
    app.register_blueprint(__import__("smki.devicecsr.web", fromlist=["blueprint"]).blueprint)  # Device CSRs
    __import__("smki.ra.web.blueprints", fromlist=["register"]).register(app)  # RA JSON API and portal
    __import__("smki.web.drills", fromlist=["register"]).register(app)  # recovery drills: JSON API and portal
