"""SREPT runs: opened by an RA operator or the Party's SRO, recorded while open (:mod:`smki.srept.recording`),
read as progress, closed, and, on the strength of a complete run, the Party's SREPT pass recorded in the RAPP.

Opening a run puts the Party on a rehearsal footing (:func:`smki.ra.registry.begin_rehearsal`); closing it or
recording the pass ends the footing. A run closed without a pass also withdraws the Repository credentials
its AROs got while rehearsing, since Repository access opens only after a pass.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from smki.core.errors import SmkiError
from smki.core.policyfiles.srept import Scenario, SreptCatalogue
from smki.instance import Instance
from smki.ra import audit, registry
from smki.ra.forms import repository_within
from smki.ra.identity import NotAuthorised, Principal, require_operator, require_sro
from smki.ra.lodging import repository_holder
from smki.ra.models import Appointment, Organisation
from smki.srept.catalogue import applicable, catalogue_digest, scenarios_by_id
from smki.srept.models import SreptInteraction, SreptMatch, SreptRun
from smki.srept.recording import Captured, flush_all, forget_open_runs, party_roles, sha256_text

ALREADY_OPEN = "WF:SRP01"
NOT_OPEN = "WF:SRP02"
INCOMPLETE = "WF:SRP03"
UNKNOWN_SCENARIO = "FM:SRP04"
NOT_ATTESTABLE = "WF:SRP05"
UNKNOWN_RUN = "WF:SRP06"
AZ_NOT_PARTY_MEMBER = "AZ:SRP01"
CONSOLE = "console:smki-srept"  # the sandbox's own command line, run by whoever runs the sandbox


class RunNotFound(SmkiError):
    status = 404


@dataclass(frozen=True)
class OpenedRun:
    run: SreptRun
    run_key: str                 # shown once: requests carrying it are recorded for the run
    recording_from: dt.datetime  # every web worker records the run from then on


@dataclass(frozen=True)
class ScenarioProgress:
    id: str
    interface: str
    title: str
    kind: str
    confidence: str
    state: str                        # not_run | passed | failed
    passing: tuple[int, ...]          # interaction ids that passed it
    failing: tuple[int, ...]          # interaction ids that counted against it


@dataclass(frozen=True)
class Progress:
    run: SreptRun
    party: str
    scenarios: tuple[ScenarioProgress, ...]

    @property
    def complete(self) -> bool:
        return all(s.state == "passed" for s in self.scenarios)

    def count(self, state: str) -> int:
        return sum(1 for s in self.scenarios if s.state == state)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def state_of(passing: Sequence[int], failing: Sequence[int]) -> str:
    """A scenario passed once any interaction passed it, whatever failed before; failed when only failures."""
    return "passed" if passing else ("failed" if failing else "not_run")


class SreptService:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.database = instance.database

    @cached_property
    def catalogue(self) -> SreptCatalogue:
        return self.instance.policies.srept

    # --- who may ---------------------------------------------------------------------------------------

    @staticmethod
    def _may_run(principal: Principal | None, organisation_id: int) -> None:
        """An RA operator, or the Party's own SRO (``None``: the sandbox's own console, ``smki srept``)."""
        if principal is not None and principal.holds("ra_operator") is None:
            require_sro(principal, organisation_id)

    @staticmethod
    def _operator(principal: Principal | None) -> str:
        if principal is None:
            return CONSOLE
        require_operator(principal)
        return principal.label

    @staticmethod
    def _may_read(principal: Principal, organisation_id: int) -> None:
        """An RA operator, or anyone of the Party (its SRO, its AROs)."""
        if principal.holds("ra_operator") is None and principal.organisation_id != organisation_id:
            raise NotAuthorised(AZ_NOT_PARTY_MEMBER, "only the Party's own people and RA operators may read its "
                                "SREPT runs.")

    def _run(self, session: Session, run_id: int) -> SreptRun:
        run = session.get(SreptRun, run_id)
        if run is None:
            raise RunNotFound(UNKNOWN_RUN, f"there is no SREPT run {run_id}.")
        return run

    # --- opening and closing ---------------------------------------------------------------------------

    def open(self, principal: Principal | None, organisation_id: int) -> OpenedRun:
        self._may_run(principal, organisation_id)
        actor = principal.label if principal else CONSOLE
        run_key = f"srept_{secrets.token_urlsafe(24)}"
        policies = self.catalogue.recording.rehearsal_policies

        def work(session: Session) -> SreptRun:
            party = registry.organisation(session, organisation_id)
            existing = session.execute(select(SreptRun.id).where(SreptRun.organisation_id == organisation_id,
                                                                 SreptRun.status == "open")).scalar()
            if existing is not None:
                raise SmkiError(ALREADY_OPEN, f"{party.name} already has SREPT run {existing} open; close it first.")
            category, roles = party_roles(session, organisation_id)
            scenarios = [s.id for s in applicable(self.catalogue, category, roles)]
            audit.append(session, actor=actor, action="srept.run.opened", subject=party.name,
                         detail={"scenarios": len(scenarios)})
            granted = registry.begin_rehearsal(session, actor=actor, organisation_id=organisation_id,
                                               policies=policies)
            run = SreptRun(organisation_id=organisation_id, status="open", opened_by=actor,
                           opened_at=_now(), run_key_sha256=sha256_text(run_key),
                           catalogue_sha256=catalogue_digest(self.catalogue), scenarios=scenarios,
                           rehearsal_granted=granted)
            session.add(run)
            session.flush()
            return run

        run = audit.audited(self.database, work)
        forget_open_runs()
        refresh = dt.timedelta(seconds=self.catalogue.recording.open_runs_refresh_seconds)
        return OpenedRun(run, run_key, run.opened_at + refresh)

    def close(self, principal: Principal | None, run_id: int) -> SreptRun:
        flush_all()
        actor = principal.label if principal else CONSOLE

        def work(session: Session) -> SreptRun:
            run = self._run(session, run_id)
            self._may_run(principal, run.organisation_id)
            if run.status != "open":
                raise SmkiError(NOT_OPEN, f"SREPT run {run_id} is {run.status}, not open.")
            party = registry.organisation(session, run.organisation_id)
            audit.append(session, actor=actor, action="srept.run.closed", subject=party.name,
                         detail={"run": run.id})
            self._end(session, run, actor, "closed")
            if party.srept_passed_at is None:
                self._withdraw_repository_access(session, party)
            return run

        run = audit.audited(self.database, work)
        forget_open_runs()
        return run

    def _end(self, session: Session, run: SreptRun, actor: str, status: str) -> None:
        registry.end_rehearsal(session, actor=actor, organisation_id=run.organisation_id,
                               granted=run.rehearsal_granted)
        run.status, run.closed_by, run.closed_at = status, actor, _now()

    @staticmethod
    def _withdraw_repository_access(session: Session, party: Organisation) -> None:
        """The Repository credentials the Party's AROs got while rehearsing (Repository access opens only after
        a pass)."""
        people = session.execute(select(Appointment.person_id).where(
            Appointment.organisation_id == party.id, Appointment.role == "aro",
            Appointment.scope_repository.is_(True))).scalars()
        access = repository_within(session)
        for person_id in set(people):
            access.revoke_all(repository_holder(party.name, person_id))

    # --- reading -----------------------------------------------------------------------------------------

    def runs(self, principal: Principal, organisation_id: int) -> list[SreptRun]:
        self._may_read(principal, organisation_id)
        with self.database.session() as session:
            return list(session.execute(select(SreptRun).where(SreptRun.organisation_id == organisation_id)
                                        .order_by(SreptRun.id)).scalars())

    def progress(self, principal: Principal | None, run_id: int) -> Progress:
        """Each scenario of the run as not run, passed or failed, with the interactions that count (``None``:
        the caller is the sandbox itself, such as ``smki srept`` on the command line)."""
        flush_all()  # this process's waiting interactions; other workers write theirs within flush_seconds
        with self.database.session() as session:
            run = self._run(session, run_id)
            if principal is not None:
                self._may_read(principal, run.organisation_id)
            party = registry.organisation(session, run.organisation_id).name
            matches = session.execute(select(SreptMatch.scenario_id, SreptMatch.interaction_id, SreptMatch.passed)
                                      .where(SreptMatch.run_id == run_id).order_by(SreptMatch.id)).all()
        known = scenarios_by_id(self.catalogue)
        rows = []
        for scenario_id in run.scenarios:
            interface, scenario = known.get(scenario_id, ("(no longer in the catalogue)", None))
            passing = tuple(m.interaction_id for m in matches if m.scenario_id == scenario_id and m.passed)
            failing = tuple(m.interaction_id for m in matches if m.scenario_id == scenario_id and not m.passed)
            rows.append(ScenarioProgress(scenario_id, interface, scenario.title if scenario else scenario_id,
                                         scenario.kind if scenario else "positive",
                                         scenario.confidence if scenario else "A", state_of(passing, failing),
                                         passing, failing))
        return Progress(run, party, tuple(rows))

    def interactions(self, principal: Principal | None, run_id: int, *, bodies: bool = False) -> list[SreptInteraction]:
        flush_all()
        query = select(SreptInteraction).where(SreptInteraction.run_id == run_id).order_by(SreptInteraction.id)
        if bodies:
            query = query.options(undefer(SreptInteraction.request_body), undefer(SreptInteraction.response_body))
        with self.database.session() as session:
            run = self._run(session, run_id)
            if principal is not None:
                self._may_read(principal, run.organisation_id)
            return list(session.execute(query).scalars())

    def interaction(self, principal: Principal | None, run_id: int, interaction_id: int) -> SreptInteraction:
        with self.database.session() as session:
            run = self._run(session, run_id)
            if principal is not None:
                self._may_read(principal, run.organisation_id)
            found = session.get(SreptInteraction, interaction_id)
            if found is None or found.run_id != run_id:
                raise RunNotFound(UNKNOWN_RUN, f"SREPT run {run_id} has no interaction {interaction_id}.")
            _ = found.request_body, found.response_body  # deferred columns, read while the session is open
            return found

    # --- attestation (scenarios done outside HTTP) ---------------------------------------------------------

    def attest(self, principal: Principal | None, run_id: int, scenario_id: str, note: str,
               evidence_name: str | None = None, evidence: bytes = b"") -> None:
        """An RA operator attests that the Party did a scenario the sandbox cannot see (an SFTP extract)."""
        actor = self._operator(principal)
        from smki.srept.context import recorder

        self._attestable(scenario_id)
        with self.database.session() as session:
            run = self._run(session, run_id)
            if run.status != "open":
                raise SmkiError(NOT_OPEN, f"SREPT run {run_id} is {run.status}, not open.")
            if scenario_id not in run.scenarios:
                raise SmkiError(UNKNOWN_SCENARIO, f"{scenario_id} does not apply to this run.", field="scenario")
        captured = Captured(at=_now(), elapsed_ms=0, method="ATTEST", path=scenario_id, query={}, http_status=200,
                            request_type="text/plain", request_body=note.encode(),
                            response_type="application/octet-stream" if evidence else None, response_body=evidence,
                            note=f"{note} [{evidence_name}]" if evidence_name else note,
                            attested_by=actor)
        recorder(self.instance).record_for_run(run_id, captured)

    def _attestable(self, scenario_id: str) -> Scenario:
        found = scenarios_by_id(self.catalogue).get(scenario_id)
        if found is None:
            raise SmkiError(UNKNOWN_SCENARIO, f"there is no scenario {scenario_id!r} in the catalogue.",
                            field="scenario")
        scenario = found[1]
        if not any("attestation" in way.request.credentials for way in scenario.satisfied_by):
            raise SmkiError(NOT_ATTESTABLE, f"{scenario_id} is passed by the Party's own interactions, not by an "
                            "attestation.", field="scenario")
        return scenario

    # --- into the RAPP ------------------------------------------------------------------------------------

    def record_pass(self, principal: Principal | None, run_id: int, pack_sha256: str) -> SreptRun:
        """Record the Party's SREPT pass in the RAPP on the strength of run ``run_id``: every scenario that
        applies to it passed. ``pack_sha256`` is the digest of the evidence pack's signed manifest the
        operator relied on (kept with the run and in the audit record)."""
        actor = self._operator(principal)
        progress = self.progress(principal, run_id)
        if not progress.complete:
            missing = [s.id for s in progress.scenarios if s.state != "passed"]
            raise SmkiError(INCOMPLETE, f"SREPT run {run_id} is not complete: {len(missing)} scenario(s) not passed "
                            f"({', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}).")

        def work(session: Session) -> SreptRun:
            run = self._run(session, run_id)
            if run.status == "passed":
                raise SmkiError(NOT_OPEN, f"SREPT run {run_id} already carried the Party's pass.")
            registry.record_srept(session, actor=actor, organisation_id=run.organisation_id, passed=True,
                                  evidence={"srept_run": run.id, "pack_sha256": pack_sha256,
                                            "catalogue_sha256": run.catalogue_sha256})
            if run.status == "open":
                self._end(session, run, actor, "passed")
            else:
                run.status = "passed"
            run.pass_recorded_by, run.pass_recorded_at, run.pack_sha256 = actor, _now(), pack_sha256
            return run

        run = audit.audited(self.database, work)
        forget_open_runs()
        return run
