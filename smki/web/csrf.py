"""One CSRF check for every portal form: Flask-WTF's CSRFProtect, on for the whole app by default.

Protected (every POST carries the ``csrf_token`` field the pages render): the RA portal (``/portal``,
sign-in included), the Device CSR upload pages (``/portal/device-csr-batches``, behind the RA portal's
sign-in) and the Repository portal (``/repository``, log-in included, so another site cannot sign a person
in under someone else's account). A new blueprint is protected until it is exempted here, on purpose.

Exempt, deliberately: the APIs, whose callers are systems and scripts that present a credential on
every request (an API token in ``Authorization: Bearer``, an IKI client certificate, a Repository API
key) and never fetch a form to take a token from. None of them is authenticated by a portal's session
cookie, except the Repository's JSON API, which also honours the Repository portal's session (so the
portal's links work): a change made there with that cookie is checked like a form.

A refusal is a page with a code (``FM:CSRF1``) and what to do, never a bare 400.
"""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from repository.web.common import SESSION_COOKIE as REPOSITORY_SESSION_COOKIE
from smki.core.errors import SmkiError
from smki.core.problem import error_response

CSRF_REFUSED = "FM:CSRF1"
TOKEN_LIFETIME_SECONDS = 3600  # Flask-WTF's default, stated here because the refusal page names it

# Blueprint name -> why its callers need no CSRF token.
EXEMPT_BLUEPRINTS = {
    "ca_api": "public, read-only CA certificates; no credentials at all",
    "ra_api": "an API token (Bearer) or the IKI client certificate, never the portal session (smki.ra.web.caller)",
    "repository_api": "a Repository API key; requests that carry the portal's session cookie are checked below",
    "repository_xml": "the Appendix O services: the apikey query parameter",
    "drills_api": "an API token (Bearer) or the IKI client certificate, never the portal session (smki.web.drills)",
    "srept_api": "an API token (Bearer) or the IKI client certificate, as the RA's JSON API (smki.web.srept)",
}
# Endpoint -> why. The Device CSR blueprint serves both the Appendix M services and the portal's upload
# pages, so its two service endpoints are exempted one by one and the upload form stays protected.
EXEMPT_ENDPOINTS = {
    "devicecsr.adhoc_csr": "Appendix M ad hoc service: a Bearer token or the IKI client certificate",
    "devicecsr.submit_batch": "Appendix M batch service: a Bearer token or the IKI client certificate",
}
# Portals whose refusal page is the Repository's; the others are the RA portal's (the upload pages too).
REPOSITORY_PAGES = frozenset({"repository_portal"})
API_BLUEPRINTS = frozenset(EXEMPT_BLUEPRINTS)


def protect_forms(app: Flask) -> CSRFProtect:
    """Turn the check on for ``app``, once every blueprint is registered (a missing name fails here, at start,
    rather than leaving an API refusing its callers or a portal unprotected)."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", TOKEN_LIFETIME_SECONDS)
    csrf = CSRFProtect(app)
    for name in EXEMPT_BLUEPRINTS:
        csrf.exempt(app.blueprints[name])
    for endpoint in EXEMPT_ENDPOINTS:
        csrf.exempt(app.view_functions[endpoint])

    @app.before_request
    def repository_session_on_the_api() -> None:
        # Any cookie-authenticated change is a portal request: a stray API key beside the cookie does not
        # exempt it, since the Repository falls back to the cookie when the key is not valid.
        if app.config["WTF_CSRF_ENABLED"] and request.blueprint == "repository_api" \
                and request.cookies.get(REPOSITORY_SESSION_COOKIE):
            csrf.protect()

    app.register_error_handler(CSRFError, refused)
    return csrf


def refused(error: CSRFError) -> tuple[str, int] | Response:
    refusal = SmkiError(CSRF_REFUSED, "this form was not sent from this portal's own page, or the page was opened "
                        f"more than an hour ago ({error.description}); reload the page, sign in again if asked, and "
                        "send it again.")
    if request.blueprint in REPOSITORY_PAGES:
        return render_template("repository_error.html", code=refusal.code, message=refusal.message), 400
    if request.blueprint in API_BLUEPRINTS:
        return error_response(refusal)
    return render_template("ra/error.html", error=refusal, principal=None), 400
