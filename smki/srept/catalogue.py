"""The SREPT scenario catalogue (``policies/srept/``) applied: which scenarios a Party must pass, and which an
observed interaction counts for.

How an interaction counts (docs/srept.md "Matching"):

- A request may name the scenario it plays (header ``X-SREPT-Scenario``). It then counts for that scenario
  alone: passed if it is one of the ways the catalogue gives and the answer is the one expected, failed
  otherwise (a negative scenario the sandbox did not refuse as it should fails this way).
- An undeclared interaction passes every scenario it satisfies. If it satisfies none, it fails each positive
  scenario whose request it matches: the Party tried that and the sandbox did not do it. It never fails a
  negative scenario: a refusal for another reason belongs to another scenario, and without the header the
  sandbox cannot tell which refusal the Party meant to provoke.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from smki.core.policyfiles.srept import OutcomeMatcher, RequestMatcher, Scenario, SreptCatalogue


@dataclass(frozen=True)
class Observed:
    """An interaction as the matcher sees it: what was asked, how the caller identified itself, what came back."""

    method: str
    path: str
    query: Mapping[str, str]
    credential_kind: str
    request_text: str
    http_status: int
    service_status: str | None
    error_code: str | None
    response_text: str
    declared_scenario: str | None = None
    crl_serials: frozenset[str] = field(default_factory=frozenset)      # upper-case hex, when the answer is a CRL
    revoked_by_run: frozenset[str] = field(default_factory=frozenset)   # serials this run asked to revoke


@dataclass(frozen=True)
class Verdict:
    scenario_id: str
    passed: bool


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def request_matches(matcher: RequestMatcher, seen: Observed) -> bool:
    if matcher.method != seen.method or not _compiled(matcher.path).fullmatch(seen.path):
        return False
    if matcher.credentials and seen.credential_kind not in matcher.credentials:
        return False
    for name, pattern in matcher.query.items():
        if not _compiled(pattern).fullmatch(seen.query.get(name, "")):
            return False
    return matcher.body is None or _compiled(matcher.body).search(seen.request_text) is not None


def outcome_matches(matcher: OutcomeMatcher, seen: Observed) -> bool:
    if matcher.http_status and seen.http_status not in matcher.http_status:
        return False
    if matcher.status and seen.service_status not in matcher.status:
        return False
    if matcher.error_code is not None and not (seen.error_code and _compiled(matcher.error_code).fullmatch(
            seen.error_code)):
        return False
    if matcher.body is not None and _compiled(matcher.body).search(seen.response_text) is None:
        return False
    return not matcher.lists_revoked_serial or bool(seen.crl_serials & seen.revoked_by_run)


def _tried(scenario: Scenario, seen: Observed) -> tuple[bool, bool]:
    """(the request is one of the scenario's ways, one of those ways also got the expected answer)"""
    tried = passed = False
    for way in scenario.satisfied_by:
        if request_matches(way.request, seen):
            tried = True
            passed = passed or outcome_matches(way.outcome, seen)
    return tried, passed


def judge(scenarios: Iterable[Scenario], seen: Observed) -> list[Verdict]:
    """The scenarios ``seen`` counts for, each passed or failed (see the module's rules)."""
    candidates = list(scenarios)
    if seen.declared_scenario is not None:
        for scenario in candidates:
            if scenario.id == seen.declared_scenario:
                return [Verdict(scenario.id, _tried(scenario, seen)[1])]
        return []  # a scenario that does not apply to the Party (or none of the catalogue's) counts for nothing
    passes: list[Verdict] = []
    failures: list[Verdict] = []
    for scenario in candidates:
        tried, passed = _tried(scenario, seen)
        if passed:
            passes.append(Verdict(scenario.id, True))
        elif tried and scenario.kind == "positive":
            failures.append(Verdict(scenario.id, False))
    return passes or failures


def needs_revocations(scenarios: Iterable[Scenario]) -> bool:
    """Whether any scenario looks for a CRL listing the run's revocations (so the recorder reads them)."""
    return any(way.outcome.lists_revoked_serial for scenario in scenarios for way in scenario.satisfied_by)


def applicable(catalogue: SreptCatalogue, category: str, user_roles: Collection[str]) -> list[Scenario]:
    """The catalogue's scenarios for a Party of ``category`` holding ``user_roles`` (the DCC holds role DCC)."""
    roles = set(user_roles) | ({"DCC"} if category == "dcc" else set())
    chosen = []
    for interface in catalogue.interfaces:
        for scenario in interface.scenarios:
            rule = scenario.applies_to
            if rule.party_categories and category not in rule.party_categories:
                continue
            if rule.user_roles and not roles & set(rule.user_roles):
                continue
            chosen.append(scenario)
    return chosen


def scenarios_by_id(catalogue: SreptCatalogue) -> dict[str, tuple[str, Scenario]]:
    """Scenario id -> (its interface's title, the scenario)."""
    return {scenario.id: (interface.title, scenario) for interface in catalogue.interfaces
            for scenario in interface.scenarios}


def catalogue_digest(catalogue: SreptCatalogue) -> str:
    """SHA-256 of the catalogue as loaded: a run names the catalogue it was judged against."""
    canonical = json.dumps(catalogue.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
