"""Every area registers its blueprint here, one line each, so areas never edit each other's modules."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from smki.web.ca_api import blueprint as ca_api

    app.register_blueprint(ca_api)
