"""``policies/srept/``: the SREPT scenario catalogue (one file per interface) and ``recording.yaml``.

Each interface file names the scenarios a Party rehearses against that interface: who they apply to (Party
category, User Role), whether they are positive (the sandbox must do it) or negative (the sandbox must refuse),
which interactions satisfy them (a request matcher and an outcome matcher), the evidence each needs, and how
sure the scenario is: ``V`` from public text, ``A`` an assumption awaiting the normative SREPT documents.
:mod:`smki.srept.catalogue` matches interactions against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field

from smki.core.policyfiles.base import Names, PolicyContext, PolicyModel, Problem, TupleOf

BAD_CATALOGUE = "CA:CFG50"
PARTY_CATEGORIES = "party_categories"  # PolicyContext: eligibility.yaml's Party categories
USER_ROLES = "user_roles"              # PolicyContext: eligibility.yaml's User Roles

CredentialKind = Literal["api_token", "client_certificate", "portal_session", "api_key", "repository_session",
                         "repository_password", "run_key", "attestation"]
"""How the caller identified itself: an RA API token, an IKI client certificate, the RA portal's session, a
Repository API key, the Repository portal's session or its sign-in, only the run's key (no credential, or one
that did not authenticate), or an RA operator's attestation of something done outside HTTP."""
EvidenceKind = Literal["request", "response", "certificate", "crl", "arl", "extract", "batch_result", "attestation"]
Method = Literal["GET", "POST", "PUT", "DELETE", "ATTEST"]
ScenarioId = Annotated[str, Field(pattern=r"^[A-Z]{2,8}-[0-9]{2}$")]
Pattern = Annotated[str, Field(min_length=1, max_length=300)]


def _pattern_problems(loc: tuple[str | int, ...], pattern: str | None) -> Iterator[Problem]:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        yield Problem(loc, f"a regular expression ({exc})", pattern, BAD_CATALOGUE)


class RequestMatcher(PolicyModel):
    """Which requests count: method and path, how the caller identified itself, query values, body text."""

    method: Method
    path: Pattern
    """A regular expression the whole path must match."""
    credentials: TupleOf[CredentialKind] = ()
    """Any of these (empty: any credential)."""
    query: dict[str, Pattern] = Field(default_factory=dict)
    """Query parameter -> a regular expression its value must match."""
    body: Pattern | None = None
    """A regular expression searched for in the request body (as recorded)."""


class OutcomeMatcher(PolicyModel):
    """What the sandbox must have answered for the interaction to pass the scenario."""

    http_status: TupleOf[int] = ()
    """Any of these HTTP statuses (empty: any)."""
    status: Names = ()
    """Any of these service statuses: the XML Status/BatchStatus, or the Appendix O ResponseCode."""
    error_code: Pattern | None = None
    """A regular expression the answer's error code must match (the problem document's ``code``, the XML
    ``ErrorCode``); set: the answer must carry a code."""
    body: Pattern | None = None
    """A regular expression searched for in the response body (as recorded)."""
    lists_revoked_serial: bool = False
    """The answer is a CRL listing a serial whose revocation this run requested."""


class Interaction(PolicyModel):
    request: RequestMatcher
    outcome: OutcomeMatcher


class Applicability(PolicyModel):
    party_categories: Names = ()
    """The scenario applies to Parties of these categories (empty: every category)."""
    user_roles: Names = ()
    """... holding at least one of these User Roles (empty: whatever roles they hold)."""


class Scenario(PolicyModel):
    id: ScenarioId
    title: Annotated[str, Field(min_length=3, max_length=200)]
    kind: Literal["positive", "negative"]
    """positive: passes when the sandbox does it; negative: passes when the sandbox refuses as it should."""
    confidence: Literal["A", "V"]
    """V: the behaviour is in public text (the source); A: an assumption, to correct against the SREPT documents."""
    source: str = ""
    applies_to: Applicability = Applicability()
    satisfied_by: Annotated[TupleOf[Interaction], Field(min_length=1)]
    """Interactions any one of which passes the scenario."""
    evidence: Annotated[TupleOf[EvidenceKind], Field(min_length=1)]
    """What the evidence pack holds for it."""


class InterfaceCatalogue(PolicyModel):
    """One file of ``policies/srept/``: the scenarios of one interface."""

    interface: Annotated[str, Field(pattern=r"^[a-z_]{2,40}$")]
    title: Annotated[str, Field(min_length=3)]
    source: str = ""
    scenarios: Annotated[TupleOf[Scenario], Field(min_length=1)]

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        categories, roles = context.names(PARTY_CATEGORIES), context.names(USER_ROLES)
        seen: set[str] = set()
        for n, scenario in enumerate(self.scenarios):
            loc: tuple[str | int, ...] = ("scenarios", n)
            if scenario.id in seen:
                yield Problem((*loc, "id"), "an id used once in the catalogue", scenario.id, BAD_CATALOGUE)
            seen.add(scenario.id)
            for name, allowed, values in ((PARTY_CATEGORIES, categories, scenario.applies_to.party_categories),
                                          (USER_ROLES, roles, scenario.applies_to.user_roles)):
                for k, value in enumerate(values):
                    if allowed is not None and value not in allowed and value != "DCC":
                        yield Problem((*loc, "applies_to", name, k), f"one of {', '.join(sorted(allowed))}", value,
                                      BAD_CATALOGUE)
            for k, way in enumerate(scenario.satisfied_by):
                at = (*loc, "satisfied_by", k)
                yield from _pattern_problems((*at, "request", "path"), way.request.path)
                yield from _pattern_problems((*at, "request", "body"), way.request.body)
                for key, pattern in way.request.query.items():
                    yield from _pattern_problems((*at, "request", "query", key), pattern)
                yield from _pattern_problems((*at, "outcome", "error_code"), way.outcome.error_code)
                yield from _pattern_problems((*at, "outcome", "body"), way.outcome.body)
                if scenario.kind == "negative" and not (way.outcome.error_code or way.outcome.status
                                                        or way.outcome.http_status):
                    yield Problem((*at, "outcome"), "a negative scenario names the refusal it expects "
                                  "(error_code, status or http_status)", code=BAD_CATALOGUE)


class Recording(PolicyModel):
    """``policies/srept/recording.yaml``: how interactions are recorded while a SREPT run is open."""

    body_limit_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 262_144
    """Each request and response body is kept up to this many bytes (marked truncated beyond)."""
    open_runs_refresh_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    """How long a web worker trusts its list of open runs; a run opened in another worker is recorded from at
    most this long after it opened (the open answer says from when)."""
    flush_seconds: Annotated[float, Field(ge=0, le=60)] = 0.2
    """Interactions are matched and written this long after the answer, in batches, off the request path (0:
    on the request path, before the answer)."""
    max_pending: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """Past this many waiting interactions the request that overfills the buffer writes them itself."""
    rehearsal_policies: TupleOf[Literal["organisation", "device"]] = ("organisation", "device")
    """While its run is open a Party rehearses as an Authorised Subscriber under these Certificate Policies."""


class SreptCatalogue(PolicyModel):
    """The whole folder: the recording settings and every interface's scenarios, in file-name order."""

    recording: Recording = Recording()
    interfaces: TupleOf[InterfaceCatalogue]

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        seen: dict[str, str] = {}
        for n, interface in enumerate(self.interfaces):
            for k, scenario in enumerate(interface.scenarios):
                if scenario.id in seen and seen[scenario.id] != interface.interface:
                    yield Problem(("interfaces", n, "scenarios", k, "id"), f"an id not already used in "
                                  f"{seen[scenario.id]}", scenario.id, BAD_CATALOGUE)
                seen[scenario.id] = interface.interface
