"""CSR volumes per Authorised Subscriber per month (SEC L8.9), in one aggregate query.

The public count the CSR Forecast Variance Report reads (:mod:`smki.reports`). Each CSR is counted once,
from the record its channel keeps whatever the outcome:

- ``device_batched``: a CSR of a batch (web service or portal zip) has exactly one outcome row, keyed by
  (batch, position); counted in the month its batch was submitted;
- ``device_single``: an ad hoc Device CSR web service call carries one CSR and has one transaction row;
  a Device CSR sent through the RA's API has one RA decision row (:mod:`smki.ra.csr_volumes`);
- ``organisation``: one RA decision row per Organisation CSR.

``policies/variance.yaml`` ``counting.malformed`` decides whether CSRs refused as malformed (CSR_ERROR),
which never reached an RA decision, count. Months are given by their starts, so the count is one query
however many months a report needs (the MP160 regime needs the trailing months too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, union_all

from smki.core.db import Database
from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrOutcome, DeviceCsrTransaction
from smki.ra.csr_volumes import KIND, MONTH, SUBSCRIBER, decision_volumes, grouped, month_bucket

MALFORMED = "CSR_ERROR"
KINDS = ("device_single", "device_batched", "organisation")


@dataclass(frozen=True)
class CsrVolume:
    organisation_id: int
    month: str
    kind: str              # device_single | device_batched | organisation
    csrs: int


def csr_volumes(database: Database, starts: Sequence[dt.datetime], labels: Sequence[str], *,
                count_malformed: bool = True) -> list[CsrVolume]:
    """CSRs per (Subscriber, month, kind) for the months labelled ``labels``: month i runs from
    ``starts[i]`` (inclusive) to ``starts[i + 1]`` (exclusive), so ``starts`` has one more entry."""
    if len(starts) != len(labels) + 1 or not labels:
        raise ValueError("give each month's start and the end of the last month")
    starts = [start.astimezone(dt.UTC) for start in starts]

    # Outcomes are counted per batch first (the primary key's leading column), then the few batch rows
    # joined: far cheaper than joining every outcome row to its batch.
    per_batch = select(DeviceCsrOutcome.batch_id, func.count().label("n")).group_by(DeviceCsrOutcome.batch_id)
    if not count_malformed:
        per_batch = per_batch.where(DeviceCsrOutcome.status != MALFORMED)
    in_range = select(DeviceCsrBatch.id).where(DeviceCsrBatch.submitted_at >= starts[0],
                                               DeviceCsrBatch.submitted_at < starts[-1])
    counted = per_batch.where(DeviceCsrOutcome.batch_id.in_(in_range)).subquery()
    batched = (select(DeviceCsrBatch.party_id.label(SUBSCRIBER), literal("device_batched").label(KIND),
                      month_bucket(DeviceCsrBatch.submitted_at, starts, labels).label(MONTH),
                      func.sum(counted.c.n).label("csrs"))
               .select_from(counted).join(DeviceCsrBatch, DeviceCsrBatch.id == counted.c.batch_id)
               .group_by(*grouped()))

    ad_hoc = (select(DeviceCsrTransaction.party_id.label(SUBSCRIBER), literal("device_single").label(KIND),
                     month_bucket(DeviceCsrTransaction.received_at, starts, labels).label(MONTH),
                     func.count().label("csrs"))
              .where(DeviceCsrTransaction.party_id.is_not(None), DeviceCsrTransaction.received_at >= starts[0],
                     DeviceCsrTransaction.received_at < starts[-1])
              .group_by(*grouped()))
    if not count_malformed:
        ad_hoc = ad_hoc.where(DeviceCsrTransaction.status != MALFORMED)

    statement: Any = union_all(batched, ad_hoc, decision_volumes(starts, labels, count_malformed=count_malformed))
    totals: dict[tuple[int, str, str], int] = {}
    with database.session() as session:
        rows: list[Any] = list(session.execute(statement))
        for subscriber, kind, month, csrs in rows:
            if subscriber is None or month is None or not str(subscriber).isdigit():
                continue  # a caller never identified as a Subscriber: nobody to count it against
            key = (int(subscriber), month, kind)
            totals[key] = totals.get(key, 0) + int(csrs)
    return [CsrVolume(organisation_id, month, kind, csrs) for (organisation_id, month, kind), csrs in
            sorted(totals.items())]
