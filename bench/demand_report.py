"""The Repository Demand Exceptions report for one month over 200 Repository users and 2,000,000 requests.

    python -m bench.demand_report [--users 200] [--requests 2000000] [--repeats 5] [--database-url URL]

Loads synthetic request-log rows (``repository_request``, as the Web Service's request log writes them) in
London's October 2026, plus a twentieth as many again in each month either side, which the report must leave
out; each user but one in ten gets a forecast for the month. Then times, in the same run on the same engine:

- baseline: the bare ``SELECT holder, operation, count(*) ... WHERE <month> GROUP BY holder, operation`` over
  the same rows (the least any count of them can cost: one pass, no day or band);
- the report (:func:`smki.reports.demand.build`: the one aggregate query bucketing 31 days x 3 bands with a
  CASE, the forecasts, the lines), and its CSV and HTML.

Target: the report within 2x of the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from sqlalchemy import insert, text

from bench.repository_data import bench_instance
from bench.variance_report import median_time, print_timings
from repository.models import RepositoryRequestLog
from smki.instance import Instance
from smki.ra.demand_forecasts import RepositoryDemandForecast, RepositoryDemandForecastBand
from smki.ra.population import PopulationBuilder
from smki.ra.service import RegistrationAuthority
from smki.reports import demand, demand_render

MONTH = "2026-10"
START, END = dt.datetime(2026, 9, 30, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # London's October
CHUNK = 50_000
OPERATIONS = ("certificatesearch", "retrievecertificate", "portal_search", "portal_download")
BASELINE = ("SELECT holder, operation, count(*) FROM repository_request WHERE at >= :start AND at < :end "
            "AND holder IS NOT NULL GROUP BY holder, operation")


def users(instance: Instance, count: int) -> list[str]:
    """``count`` Repository users' names; nine in ten with a forecast for every day of the month."""
    party = PopulationBuilder(RegistrationAuthority(instance), actor="bench").party("Bench Supplier", "large_supplier",
                                                                                  [("IS", "90B3D51F00000001")])
    names = [f"party:Bench Supplier/person:{n}" for n in range(count)]
    member = PopulationBuilder(RegistrationAuthority(instance), actor="bench").member(party, "Bench ARO", "aro",
                                                                                     scopes=("repository",))
    with instance.database.session() as session:
        for n, name in enumerate(names):
            if n % 10 == 9:
                continue
            forecast = RepositoryDemandForecast(organisation_id=party, person_id=member.person_id,
                                                repository_user=name, first_day=dt.date(2026, 10, 1),
                                                last_day=dt.date(2026, 10, 31), submitted_at=START)
            session.add(forecast)
            session.flush()
            session.add_all([RepositoryDemandForecastBand(forecast_id=forecast.id, band=band, portal=20,
                                                          web_service=300 + n)
                             for band in ("night", "core", "evening")])
    return names


def load(instance: Instance, names: list[str], requests: int, seed: int = 7) -> int:
    rng, reference = random.Random(seed), 0
    for share, start, end in ((requests, START, END), (requests // 20, START - dt.timedelta(days=30), START),
                              (requests // 20, END, END + dt.timedelta(days=30))):
        span = (end - start).total_seconds()
        with instance.database.session() as session:
            for first in range(0, share, CHUNK):
                rows = []
                for _ in range(first, min(share, first + CHUNK)):
                    reference += 1
                    rows.append({"audit_reference": f"b{reference}", "holder": rng.choice(names),
                                 "operation": rng.choice(OPERATIONS), "response_code": 200,
                                 "at": start + dt.timedelta(seconds=rng.random() * span), "detail": None})
                session.execute(insert(RepositoryRequestLog), rows)
    with instance.database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return requests


def baseline(instance: Instance) -> int:
    with instance.database.engine.connect() as connection:
        return sum(row[2] for row in connection.execute(text(BASELINE), {"start": START, "end": END}))


def run(instance: Instance, *, users_count: int, requests: int, repeats: int) -> dict[str, float]:
    dialect = instance.database.engine.dialect.name
    start = time.perf_counter()
    names = users(instance, users_count)
    in_month = load(instance, names, requests)
    print(f"{dialect}: {len(names)} Repository users, {in_month:,} requests in {MONTH} and {in_month // 10:,} "
          f"outside it, loaded in {time.perf_counter() - start:.1f} s", flush=True)
    now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    policy = instance.policies.variance
    bare, counted = median_time(lambda: baseline(instance), repeats)
    figures, report = median_time(lambda: demand.build(instance.database, policy, MONTH, now=now), repeats)
    total = sum(line.requests for line in report.lines)
    assert total == counted == in_month, (total, counted, in_month)
    def rendering(fmt: str) -> float:
        return median_time(lambda: demand_render.render(report, fmt), max(1, repeats // 2))[0]

    renders = {fmt: rendering(fmt) for fmt in ("csv", "html")}
    print_timings("bare count(*) GROUP BY holder, operation", bare,
                  "one aggregate query (31 days x 3 bands) + forecasts + lines", figures, renders)
    print(f"  {len(report.lines):,} lines, {len(report.exceptions):,} exceptions; {total:,} requests counted, "
          "agreeing with the baseline")
    return {"baseline": bare, "figures": figures, **renders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (URL of any database on it): "
                        "the run gets a fresh database there, dropped at the end (default: SQLite)")
    args = parser.parse_args()
    run(bench_instance(args.database_url), users_count=args.users, requests=args.requests, repeats=args.repeats)


if __name__ == "__main__":
    main()
