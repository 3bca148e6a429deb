"""Fixtures for the reports: the RA population of tests/ra, a fixed clock, and CSR records seeded into the
channels' own tables exactly as the channels write them (one outcome per batched CSR, one transaction per
ad hoc call, one RA decision per CSR decided by the RA)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrOutcome, DeviceCsrTransaction
from smki.ra.models import CsrDecision
from smki.ra.service import RegistrationAuthority
from tests.ra.conftest import Population, app, client, population, ra  # noqa: F401  (fixtures)

_serial = itertools.count(1)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """One clock for the forms (forecast windows) and the reports."""
    fixed = Clock(at("2026-09-15T10:00:00"))
    monkeypatch.setattr("smki.ra.forms._now", fixed)
    yield fixed


class Ledger:
    """Writes CSR records the way the channels do, and keeps nothing itself: the tests count from the tables."""

    def __init__(self, ra: RegistrationAuthority) -> None:  # noqa: F811
        self.database = ra.database

    def batch(self, party: int, submitted_at: dt.datetime, csrs: int, *, malformed: int = 0, channel: str = "batch",
              statuses: tuple[str, ...] = ("SUCCESS", "INELIGIBLE", "WORKFLOW_ERROR")) -> None:
        with self.database.session() as session:
            batch = DeviceCsrBatch(party_id=str(party), subscriber="{}", channel=channel, reference="seed",
                                   status="COMPLETE", payload=b"", payload_sha256="0" * 64, csr_count=csrs + malformed,
                                   submitted_at=submitted_at)
            session.add(batch)
            session.flush()
            rows = [{"batch_id": batch.id, "seq": i, "csr_ref": f"csr{i}", "status": statuses[i % len(statuses)],
                     "decided_at": submitted_at, "manufacturing_flag": False} for i in range(csrs)]
            rows += [{"batch_id": batch.id, "seq": csrs + i, "csr_ref": f"bad{i}", "status": "CSR_ERROR",
                      "decided_at": submitted_at, "manufacturing_flag": False} for i in range(malformed)]
            if rows:
                session.execute(insert(DeviceCsrOutcome), rows)

    def adhoc(self, party: int | None, received_at: dt.datetime, calls: int, status: str = "SUCCESS") -> None:
        with self.database.session() as session:
            session.execute(insert(DeviceCsrTransaction), [
                {"party_id": None if party is None else str(party), "status": status, "received_at": received_at}
                for _ in range(calls)])

    def decisions(self, subscriber: int | None, decided_at: dt.datetime, csrs: int, *, kind: str = "organisation",
                  channel: str = "api", status: str = "released", person: int | None = None) -> None:
        with self.database.session() as session:
            session.execute(insert(CsrDecision), [{
                "decided_at": decided_at, "channel": channel, "kind": kind,
                "csr_sha256": hashlib.sha256(str(next(_serial)).encode()).hexdigest(), "allowed": status != "refused",
                "rule": "seed", "message": "seeded", "subscriber_organisation_id": subscriber, "person_id": person,
                "manufacturing_flag": False, "status": status} for _ in range(csrs)])


@pytest.fixture
def ledger(ra: RegistrationAuthority) -> Ledger:  # noqa: F811
    return Ledger(ra)
