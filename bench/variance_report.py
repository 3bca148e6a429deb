"""The CSR Forecast Variance Report for one month over 100 Subscribers and 2,000,000 CSRs.

    python -m bench.variance_report [--subscribers 100] [--csrs 2000000] [--repeats 5] [--database-url URL]

Loads synthetic CSR records the way the channels write them (nine in ten as outcomes of Device CSR batches,
the rest as ad hoc calls and RA decisions), plus a tenth as many again in the months either side, which the
report must leave out; each Subscriber gets a forecast. Then times, in the same run on the same engine:

- baseline: the bare ``SELECT party, count(*) ... WHERE <month> GROUP BY party`` over the same rows, one per
  record table (the least any count of them can cost);
- the report's figures (:func:`smki.reports.variance.build`: the one aggregate query, the forecasts, the
  names), and the renderings (CSV, HTML and PDF).

Target (issue 10): the report's figures within 2x of the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import insert, text

from bench.repository_data import bench_instance
from smki.devicecsr.models import DeviceCsrBatch, DeviceCsrOutcome, DeviceCsrTransaction
from smki.instance import Instance
from smki.ra import forecasts
from smki.ra.models import CsrDecision
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.reports import render, variance

MONTH = "2026-10"
START, END = dt.datetime(2026, 9, 30, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # London's October
BATCH = 10_000
CHUNK = 50_000

BASELINE = {
    "batched": "SELECT b.party_id, count(*) FROM device_csr_outcome o JOIN device_csr_batch b ON b.id = o.batch_id "
               "WHERE b.submitted_at >= :start AND b.submitted_at < :end GROUP BY b.party_id",
    "ad hoc": "SELECT party_id, count(*) FROM device_csr_adhoc WHERE received_at >= :start AND received_at < :end "
              "GROUP BY party_id",
    "decisions": "SELECT subscriber_organisation_id, count(*) FROM ra_csr_decision WHERE decided_at >= :start "
                 "AND decided_at < :end GROUP BY subscriber_organisation_id",
}


def subscribers(instance: Instance, count: int) -> list[int]:
    build = PopulationBuilder(RegistrationAuthority(instance), actor="bench")
    parties = [build.party(f"Bench Supplier {n:03d}", "large_supplier", [("IS", f"90B3D51F{n:08X}")])
               for n in range(count)]
    with instance.database.session() as session:
        for n, party in enumerate(parties):
            forecasts.record_forecast(session, instance.policies.variance, {
                "organisation_id": party, "quarter": "2026-Q4", "device_single": [1000 + n] * 8,
                "device_batched": [10_000 + n] * 8, "organisation": [10] * 8},
                submission_id=None, submitted_by=None, now=dt.datetime(2026, 9, 1, tzinfo=dt.UTC))
    return parties


def _moments(rng: random.Random, start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    span = (end - start).total_seconds()
    while True:
        yield start + dt.timedelta(seconds=rng.random() * span)


def load(instance: Instance, parties: list[int], csrs: int, seed: int = 5) -> dict[str, int]:
    """``csrs`` CSR records in the month and a tenth as many outside it; returns what went where."""
    rng = random.Random(seed)
    placed = {"in month": 0, "outside": 0}
    for share, start, end in ((csrs, START, END),
                              (csrs // 20, START - dt.timedelta(days=30), START),
                              (csrs // 20, END, END + dt.timedelta(days=30))):
        when = _moments(rng, start, end)
        batched, single = share * 9 // 10, share - share * 9 // 10
        with instance.database.session() as session:
            remaining = batched
            while remaining > 0:
                size = min(BATCH, remaining)
                batch = DeviceCsrBatch(party_id=str(rng.choice(parties)), subscriber="{}", channel="batch",
                                       reference="bench", status="COMPLETE", payload=b"", payload_sha256="0" * 64,
                                       csr_count=size, submitted_at=next(when))
                session.add(batch)
                session.flush()
                for first in range(0, size, CHUNK):
                    session.execute(insert(DeviceCsrOutcome), [
                        {"batch_id": batch.id, "seq": seq, "csr_ref": f"c{seq}", "status": "SUCCESS",
                         "decided_at": batch.submitted_at, "manufacturing_flag": False}
                        for seq in range(first, min(size, first + CHUNK))])
                remaining -= size
            adhoc = single * 7 // 10
            for first in range(0, adhoc, CHUNK):
                session.execute(insert(DeviceCsrTransaction), [
                    {"party_id": str(rng.choice(parties)), "status": "SUCCESS", "received_at": next(when)}
                    for _ in range(first, min(adhoc, first + CHUNK))])
            decided = single - adhoc
            for first in range(0, decided, CHUNK):
                session.execute(insert(CsrDecision), [
                    {"decided_at": next(when), "channel": "api", "kind": "organisation" if n % 3 else "device",
                     "csr_sha256": "0" * 64, "allowed": True, "rule": "bench", "message": "",
                     "subscriber_organisation_id": rng.choice(parties), "manufacturing_flag": False,
                     "status": "released"} for n in range(first, min(decided, first + CHUNK))])
        placed["in month" if start == START else "outside"] += share
    with instance.database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))  # both engines plan from statistics of the rows just loaded
    return placed


def print_timings(baseline: str, bare: float, report: str, figures: float, renders: dict[str, float]) -> None:
    """A report benchmark's lines: the bare query, the report's figures and each rendering, each against the bare
    query of the same run (the demand report's benchmark prints the same way)."""
    print(f"  baseline  {baseline}   {bare * 1000:9.1f} ms   1.00x")
    print(f"  report    {report} {figures * 1000:9.1f} ms   {figures / bare:.2f}x   (target <= 2x)")
    for fmt, seconds in renders.items():
        print(f"  render    {fmt:<4} {seconds * 1000:9.1f} ms   {seconds / bare:.2f}x")


def median_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def baseline(instance: Instance) -> int:
    total = 0
    with instance.database.engine.connect() as connection:
        for statement in BASELINE.values():
            total += sum(row[1] for row in connection.execute(text(statement), {"start": START, "end": END}))
    return total


def run(instance: Instance, *, subscribers_count: int, csrs: int, repeats: int) -> dict[str, float]:
    dialect = instance.database.engine.dialect.name
    start = time.perf_counter()
    parties = subscribers(instance, subscribers_count)
    placed = load(instance, parties, csrs)
    print(f"{dialect}: {len(parties)} Subscribers, {placed['in month']:,} CSRs in {MONTH} and {placed['outside']:,} "
          f"outside it, loaded in {time.perf_counter() - start:.1f} s", flush=True)
    now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    bare, counted = median_time(lambda: baseline(instance), repeats)
    figures, report = median_time(lambda: variance.build(instance, MONTH, now=now), repeats)
    total = report.total_actual.device + report.total_actual.organisation
    assert total == counted == placed["in month"], (total, counted, placed)
    renders = {fmt: median_time(lambda fmt=fmt: render.render(report.published(True), fmt), max(1, repeats // 2))[0]
               for fmt in ("csv", "html", "pdf")}
    print_timings("bare count(*) GROUP BY, 3 tables", bare,
                  "figures (one aggregate query + forecasts + names)", figures, renders)
    print(f"  {len(report.exceptions)} Forecast Exceptions; {total:,} CSRs counted, agreeing with the baseline")
    return {"baseline": bare, "figures": figures, **renders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--csrs", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (URL of any database on it): "
                        "the run gets a fresh database there, dropped at the end (default: SQLite)")
    args = parser.parse_args()
    run(bench_instance(args.database_url), subscribers_count=args.subscribers, csrs=args.csrs, repeats=args.repeats)


if __name__ == "__main__":
    main()
