"""The Repository's web interfaces: the Appendix O XML service, the JSON API, and the portal pages."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from repository.web.api import blueprint as api
    from repository.web.portal import blueprint as portal
    from repository.web.xml_service import blueprint as xml_service

    app.register_blueprint(xml_service)
    app.register_blueprint(api)
    app.register_blueprint(portal)
