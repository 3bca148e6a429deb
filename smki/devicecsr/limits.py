"""The real service's rate and volume limits, as soft limits: every use is counted per Party, a use
past a limit is recorded and warned about, and refused only when ``enforce: true``."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from smki.core.db import Database
from smki.devicecsr.models import DeviceCsrUsage
from smki.devicecsr.policy import DeviceCsrPolicy

log = logging.getLogger("smki.devicecsr.limits")

ADHOC, BATCH_CSRS, POLL = "adhoc", "batch_csrs", "poll"


@dataclass(frozen=True)
class LimitFinding:
    code: str
    limit: str
    text: str


class LimitCounter:
    def __init__(self, database: Database, policy: DeviceCsrPolicy) -> None:
        self.database = database
        self.policy = policy

    def _last(self, party_id: str, kind: str) -> dt.datetime | None:
        with self.database.session() as session:
            last = session.scalar(select(func.max(DeviceCsrUsage.at))
                                  .where(DeviceCsrUsage.party_id == party_id, DeviceCsrUsage.kind == kind))
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        return last

    def _sum(self, party_id: str, kind: str, since: dt.datetime) -> int:
        with self.database.session() as session:
            return int(session.scalar(select(func.coalesce(func.sum(DeviceCsrUsage.quantity), 0))
                                      .where(DeviceCsrUsage.party_id == party_id, DeviceCsrUsage.kind == kind,
                                             DeviceCsrUsage.at >= since)) or 0)

    def check(self, party_id: str, kind: str, quantity: int = 1, *, subject: str | None = None,
              now: dt.datetime | None = None) -> list[LimitFinding]:
        """Count one use and say which limits it went past. ``subject`` narrows a poll to its batch."""
        now = now or dt.datetime.now(dt.UTC)
        limits = self.policy.limits
        key = f"{kind}:{subject}"[:24] if subject else kind
        findings: list[LimitFinding] = []
        if kind == ADHOC:
            core = limits.core_hours.contains(now)
            minimum = limits.adhoc_min_interval_core if core else limits.adhoc_min_interval_other
            last = self._last(party_id, key)
            if last is not None and (now - last).total_seconds() < minimum:
                findings.append(LimitFinding("WF:LIM1", "adhoc_min_interval", (
                    f"ad hoc Device CSRs are limited to one per {minimum:g} s "
                    f"{'in core hours' if core else 'outside core hours'}; the last was "
                    f"{(now - last).total_seconds():.2f} s ago.")))
        elif kind == BATCH_CSRS:
            total = self._sum(party_id, key, now - dt.timedelta(hours=24)) + quantity
            if total > limits.batched_csrs_per_24h:
                findings.append(LimitFinding("WF:LIM2", "batched_csrs_per_24h", (
                    f"this takes the Party's batched Device CSRs to {total} in 24 hours, past "
                    f"{limits.batched_csrs_per_24h}; the real service needs 7 days' notice of that.")))
        elif kind == POLL:
            last = self._last(party_id, key)
            if last is not None and (now - last).total_seconds() < limits.min_poll_interval:
                findings.append(LimitFinding("WF:LIM3", "min_poll_interval", (
                    f"batch results are not to be polled more than once per {limits.min_poll_interval:g} s; "
                    f"the last poll of this batch was {(now - last).total_seconds():.0f} s ago.")))
        with self.database.session() as session:
            session.execute(insert(DeviceCsrUsage), [{
                "party_id": party_id, "kind": key, "quantity": quantity, "at": now,
                "exceeded": ",".join(f.limit for f in findings)[:64] or None}])
        for finding in findings:
            log.warning("Party %s past soft limit %s: %s", party_id, finding.limit, finding.text)
        return findings

    def refuses(self, findings: list[LimitFinding]) -> LimitFinding | None:
        return findings[0] if findings and self.policy.enforce else None

    def report(self, party_id: str, now: dt.datetime | None = None) -> dict:
        """Per-Party usage in the last 24 hours and how often each limit was exceeded."""
        now = now or dt.datetime.now(dt.UTC)
        since = now - dt.timedelta(hours=24)
        with self.database.session() as session:
            rows = session.execute(select(DeviceCsrUsage.kind, DeviceCsrUsage.quantity, DeviceCsrUsage.exceeded)
                                   .where(DeviceCsrUsage.party_id == party_id, DeviceCsrUsage.at >= since)).all()
        usage: dict[str, int] = {}
        exceeded: dict[str, int] = {}
        for kind, quantity, past in rows:
            family = kind.split(":", 1)[0]
            usage[family] = usage.get(family, 0) + quantity
            for name in filter(None, (past or "").split(",")):
                exceeded[name] = exceeded.get(name, 0) + 1
        limits = self.policy.limits
        return {"party_id": party_id, "window_hours": 24, "enforce": self.policy.enforce,
                "usage": usage, "exceeded": exceeded,
                "limits": {"adhoc_min_interval_core_seconds": limits.adhoc_min_interval_core,
                           "adhoc_min_interval_other_seconds": limits.adhoc_min_interval_other,
                           "portal_adhoc_per_24h": limits.portal_adhoc_per_24h,
                           "batched_csrs_per_24h": limits.batched_csrs_per_24h,
                           "nightly_capacity_all_parties": limits.nightly_capacity_all_parties,
                           "min_poll_interval_seconds": limits.min_poll_interval}}
