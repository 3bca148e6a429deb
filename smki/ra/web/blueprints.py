"""Registers the RA's blueprints (one line in smki/web/blueprints.py calls this)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from smki.ra.web.api import blueprint as api
    from smki.ra.web.portal import register as register_portal

    app.register_blueprint(api)
    register_portal(app)
