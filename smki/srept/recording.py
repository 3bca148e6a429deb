"""Recording a Party's interactions while its SREPT run is open: attributed to the Party, matched to the
catalogue, written in batches off the request path.

The web front end (:mod:`smki.web.srept`) captures each request and answer that could belong to a Party (it
carries a credential or a run key) into a :class:`Captured` and hands it to :meth:`Recorder.record`, which
only queues it. A flusher thread (the same design as the Repository's request log,
:mod:`repository.request_log`) then, per batch: works out whose it is (an RA API token, an IKI client
certificate, the RA portal's session, a Repository API key, session or sign-in, or the run's key), drops those
of Parties with no open run, reads the answer's status, code and audit reference, matches it to the
catalogue (:func:`smki.srept.catalogue.judge`) and writes the interaction and its verdicts in one transaction.

What a crash of a web worker loses: the interactions of its last ``flush_seconds`` (0.2 s by default), which
were answered but not yet written; set ``flush_seconds: 0`` in ``policies/srept/recording.yaml`` to write each
one before the answer. Credentials are never stored: only their kind and whose they are.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from repository.access import RepositoryAccess
from repository.models import RepositoryUser
from smki.core.batched_writes import BatchedWriter
from smki.core.db import Database
from smki.core.policyfiles.srept import Recording, Scenario, SreptCatalogue
from smki.ra.identity import (
    NotAuthenticated,
    Principal,
    authenticate_certificate,
    authenticate_token,
    current_principal,
)
from smki.ra.models import Organisation, Person, UserIdentifier
from smki.srept.catalogue import Observed, applicable, judge, needs_revocations
from smki.srept.models import SreptInteraction, SreptMatch, SreptRun
from smki.srept.outcome import read_outcome, text_of

log = logging.getLogger(__name__)
RUN_KEY_HEADER = "X-SREPT-Run-Key"
SCENARIO_HEADER = "X-SREPT-Scenario"
_PERSON_IN_HOLDER = re.compile(r"/person:([0-9]+)$")  # smki.ra.lodging.repository_holder's shape


@dataclass
class Captured:
    """One request and its answer, as the web front end saw them. The credential fields hold what was
    presented, to attribute the interaction; they are dropped once it is attributed."""

    at: dt.datetime
    elapsed_ms: int
    method: str
    path: str
    query: dict[str, str]
    http_status: int
    request_type: str | None = None
    request_body: bytes = b""
    request_truncated: bool = False
    response_type: str | None = None
    response_body: bytes = b""
    response_truncated: bool = False
    run_key: str | None = None
    declared_scenario: str | None = None
    bearer_token: str | None = None
    client_certificate: bytes | None = None
    portal_credential_id: int | None = None
    api_key: str | None = None
    repository_holder: str | None = None
    repository_username: str | None = None
    note: str | None = None
    attested_by: str | None = None


@dataclass(frozen=True)
class OpenRun:
    id: int
    organisation_id: int
    scenarios: tuple[Scenario, ...]
    reads_revocations: bool


@dataclass(frozen=True)
class Attribution:
    organisation_id: int | None
    person_id: int | None
    kind: str
    holder: str | None


@dataclass
class _OpenRuns:
    by_organisation: dict[int, OpenRun] = field(default_factory=dict)
    by_key: dict[str, OpenRun] = field(default_factory=dict)
    read_at: float = 0.0


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def party_roles(session: Session, organisation_id: int) -> tuple[str, list[str]]:
    """(the Party's category, its User Roles)."""
    party = session.get(Organisation, organisation_id)
    category = party.category if party else ""
    roles = list(session.execute(select(UserIdentifier.user_role).where(
        UserIdentifier.organisation_id == organisation_id)).scalars())
    return category, roles


class Recorder:
    """The process's recorder for one database (see :func:`recorder_for`)."""

    def __init__(self, database: Database, catalogue: SreptCatalogue, iki_ca: Callable[[], x509.Certificate],
                 dccboxed_compatible: bool = False) -> None:
        self.database = database
        self.catalogue = catalogue
        self.settings: Recording = catalogue.recording
        self._iki_ca = iki_ca
        self._dccboxed = dccboxed_compatible
        self._open = _OpenRuns()
        self._open_lock = threading.Lock()
        # The Repository request log's mechanism (smki.core.batched_writes); no early flush by count: a batch is
        # what arrived within flush_seconds, or max_pending.
        self._batches: BatchedWriter[Captured] = BatchedWriter(
            self._write_batch, name="srept-recorder", flush_seconds=self.settings.flush_seconds,
            flush_rows=self.settings.max_pending, max_pending=self.settings.max_pending)

    # --- which runs are open ---------------------------------------------------------------------------

    def any_open(self) -> bool:
        """Whether any run is open (read at most every ``open_runs_refresh_seconds``): the front end captures
        nothing while none is, so recording costs one comparison per request then."""
        return bool(self._runs().by_organisation)

    def forget_open_runs(self) -> None:
        """Read the open runs afresh at the next request (this process opened or closed one)."""
        with self._open_lock:
            self._open.read_at = 0.0

    def _runs(self) -> _OpenRuns:
        now = time.monotonic()
        current = self._open
        if current.read_at and now - current.read_at < self.settings.open_runs_refresh_seconds:
            return current
        with self._open_lock:
            if self._open.read_at and now - self._open.read_at < self.settings.open_runs_refresh_seconds:
                return self._open
            fresh = _OpenRuns(read_at=now)
            with self.database.session() as session:
                for run in session.execute(select(SreptRun).where(SreptRun.status == "open")).scalars():
                    wanted = set(run.scenarios)
                    category, roles = party_roles(session, run.organisation_id)
                    scenarios = tuple(s for s in applicable(self.catalogue, category, roles) if s.id in wanted)
                    opened = OpenRun(run.id, run.organisation_id, scenarios, needs_revocations(scenarios))
                    fresh.by_organisation[run.organisation_id] = opened
                    fresh.by_key[run.run_key_sha256] = opened
            self._open = fresh
            return fresh

    # --- queueing ---------------------------------------------------------------------------------------

    def record(self, captured: Captured) -> None:
        if self.settings.flush_seconds <= 0:
            self._write([captured])
            return
        self._batches.add(captured)

    def flush(self) -> int:
        """Write every waiting interaction now; the number taken. A failed write keeps them for the next."""
        return self._batches.flush()

    def _write_batch(self, batch: Sequence[Captured]) -> bool:
        try:
            self._write(batch)
        except SQLAlchemyError:
            log.exception("could not record %d SREPT interactions; keeping them to retry", len(batch))
            return False
        return True

    def record_for_run(self, run_id: int, captured: Captured) -> None:
        """Write an interaction for a given open run now, whoever made it (an RA operator's attestation)."""
        self.forget_open_runs()
        run = next((r for r in self._runs().by_organisation.values() if r.id == run_id), None)
        if run is None:
            raise ValueError(f"SREPT run {run_id} is not open")
        with self.database.session() as session:
            self._store(session, run, Attribution(run.organisation_id, None, "attestation", captured.attested_by),
                        captured)

    # --- attribution, matching, writing -----------------------------------------------------------------

    def _write(self, batch: Iterable[Captured]) -> None:
        runs = self._runs()
        with self.database.session() as session:
            for captured in batch:
                try:
                    with session.begin_nested():  # one interaction that cannot be read costs itself alone
                        run, attribution = self._attribute(session, runs, captured)
                        if run is not None:
                            self._store(session, run, attribution, captured)
                except SQLAlchemyError:
                    raise  # the database refused: the batch is kept and written again
                except Exception:
                    log.exception("SREPT interaction %s %s not recorded", captured.method, captured.path)

    def _attribute(self, session: Session, runs: _OpenRuns,
                   captured: Captured) -> tuple[OpenRun | None, Attribution]:
        found = self._credential(session, captured)
        if found.organisation_id is not None and found.organisation_id in runs.by_organisation:
            return runs.by_organisation[found.organisation_id], found
        if captured.run_key:
            run = runs.by_key.get(sha256_text(captured.run_key))
            if run is not None:
                # presented no credential, or one that is not this Party's: recorded as the run key's
                kind = found.kind if found.organisation_id == run.organisation_id else "run_key"
                return run, Attribution(run.organisation_id, found.person_id, kind, found.holder)
        return None, found

    def _credential(self, session: Session, captured: Captured) -> Attribution:
        principal: Principal | None = None
        kind = "run_key"
        try:
            if captured.attested_by:
                return Attribution(None, None, "attestation", captured.attested_by)
            if captured.bearer_token:
                kind, principal = "api_token", authenticate_token(session, captured.bearer_token)
            elif captured.client_certificate:
                kind = "client_certificate"
                principal = authenticate_certificate(session, _certificate(captured.client_certificate),
                                                     self._iki_ca())
            elif captured.portal_credential_id is not None:
                kind, principal = "portal_session", current_principal(session, captured.portal_credential_id)
        except (NotAuthenticated, ValueError):
            return Attribution(None, None, "run_key", None)
        if principal is not None:
            return Attribution(principal.organisation_id, principal.person_id, kind, principal.label)
        holder, kind = self._repository_holder(session, captured)
        if holder is not None:
            match = _PERSON_IN_HOLDER.search(holder)
            person = session.get(Person, int(match.group(1))) if match else None
            return Attribution(person.organisation_id if person else None, person.id if person else None, kind,
                               holder)
        return Attribution(None, None, "run_key", None)

    def _repository_holder(self, session: Session, captured: Captured) -> tuple[str | None, str]:
        if captured.repository_holder:
            return captured.repository_holder, "repository_session"
        if captured.api_key:
            holder = RepositoryAccess(self.database).authenticate_api_key(captured.api_key,
                                                                          dccboxed_compatible=self._dccboxed)
            return (holder.name if holder else None), "api_key"
        if captured.repository_username:
            # the sign-in itself, right or wrong: the username names the ARO whatever the password was
            holder_name = session.execute(select(RepositoryUser.holder).where(
                RepositoryUser.username == captured.repository_username)).scalar_one_or_none()
            return holder_name, "repository_password"
        return None, "run_key"

    def _store(self, session: Session, run: OpenRun, attribution: Attribution, captured: Captured) -> None:
        outcome = read_outcome(captured.response_type, captured.response_body, captured.http_status)
        request_text = text_of(captured.request_body)
        revoked = revoked_serials(session, run.id) if run.reads_revocations and outcome.crl_serials else frozenset()
        seen = Observed(captured.method, captured.path, captured.query, attribution.kind, request_text,
                        captured.http_status, outcome.service_status, outcome.error_code,
                        text_of(captured.response_body), captured.declared_scenario, outcome.crl_serials, revoked)
        verdicts = judge(run.scenarios, seen)
        interaction_id = session.execute(insert(SreptInteraction).returning(SreptInteraction.id), {
            "run_id": run.id, "at": captured.at, "method": captured.method, "path": captured.path[:500],
            "query": captured.query, "credential_kind": attribution.kind,
            "credential_holder": (attribution.holder or "")[:160] or None, "person_id": attribution.person_id,
            "declared_scenario": (captured.declared_scenario or "")[:32] or None,
            "http_status": captured.http_status, "service_status": outcome.service_status,
            "error_code": outcome.error_code, "audit_reference": (outcome.audit_reference or "")[:80] or None,
            "elapsed_ms": captured.elapsed_ms, "request_type": (captured.request_type or "")[:128] or None,
            "request_body": captured.request_body, "request_truncated": captured.request_truncated,
            "response_type": (captured.response_type or "")[:128] or None,
            "response_body": captured.response_body, "response_truncated": captured.response_truncated,
            "note": captured.note}).scalar_one()
        if verdicts:
            session.execute(insert(SreptMatch), [{"run_id": run.id, "scenario_id": v.scenario_id,
                                                  "interaction_id": interaction_id, "passed": v.passed}
                                                 for v in verdicts])


def _certificate(data: bytes) -> x509.Certificate:
    return (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data))


def revoked_serials(session: Session, run_id: int) -> frozenset[str]:
    """Serials whose revocation the run's Party requested (the accepted Certificate Revocation Requests)."""
    bodies = session.execute(select(SreptInteraction.request_body)
                             .join(SreptMatch, SreptMatch.interaction_id == SreptInteraction.id)
                             .where(SreptMatch.run_id == run_id, SreptMatch.scenario_id == REVOCATION_SCENARIO,
                                    SreptMatch.passed.is_(True))).scalars()
    serials = set()
    for body in bodies:
        try:
            document: Any = json.loads(body)
        except ValueError:
            continue
        if isinstance(document, dict) and isinstance(document.get("serial"), str):
            serials.add(document["serial"].upper().lstrip("0") or "0")
    return frozenset(serials)


REVOCATION_SCENARIO = "REV-01"  # the catalogue's accepted Certificate Revocation Request


_recorders: dict[str, Recorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(database: Database, catalogue: SreptCatalogue, iki_ca: Callable[[], x509.Certificate],
                 dccboxed_compatible: bool = False) -> Recorder:
    """The process's one recorder for ``database``."""
    with _recorders_lock:
        found = _recorders.get(database.url)
        if found is None or found.catalogue is not catalogue:
            if found is not None:
                found.flush()
            found = _recorders[database.url] = Recorder(database, catalogue, iki_ca, dccboxed_compatible)
        return found


def flush_all() -> int:
    """Write every waiting interaction of every recorder of this process (at exit, before reading progress,
    and in tests)."""
    with _recorders_lock:
        recorders = list(_recorders.values())
    return sum(recorder.flush() for recorder in recorders)


def forget_open_runs() -> None:
    with _recorders_lock:
        recorders = list(_recorders.values())
    for recorder in recorders:
        recorder.forget_open_runs()


def _forget_in_child() -> None:
    """A forked process records for itself: the parent's waiting interactions are the parent's to write."""
    global _recorders_lock
    _recorders.clear()
    _recorders_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(flush_all)
