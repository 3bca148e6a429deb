"""Repository search at one million records: by Device ID and by serial, at the storage layer.

    python -m bench.repository_search [--records 1000000] [--queries 2000] [--database-url URL]

Loads synthetic records in bulk, then times :meth:`CertificateRepository.search` (by Device ID) and
:meth:`CertificateRepository.find` (by serial), each against the bare indexed SQL query on the same
engine in the same run (the baseline). Prints median and p99 and the query plans. Target (issue 4):
p99 under 5 ms per search at one million records, SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from sqlalchemy import text

from bench.repository_data import (
    FIRST_DEVICE,
    bench_instance,
    bulk_load,
    synthetic_rows,
    template_der,
)
from repository.store import CertificateRepository
from smki.core.eui64 import Eui64


def timings(run: Callable[[object], object], arguments: list[object]) -> tuple[float, float]:
    samples = []
    for argument in arguments:
        start = time.perf_counter()
        run(argument)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (URL of any database on it): "
                        "the run gets a fresh database there, dropped at the end (default: SQLite)")
    args = parser.parse_args()

    instance = bench_instance(args.database_url)  # removed (and its database dropped) on any exit
    dialect = instance.database.engine.dialect.name
    start = time.perf_counter()
    loaded = bulk_load(instance, synthetic_rows(args.records, template_der(instance)))
    print(f"{dialect}: loaded {loaded} records in {time.perf_counter() - start:.1f} s", flush=True)

    store = CertificateRepository(instance.database)
    rng = random.Random(11)
    with instance.database.engine.connect() as connection:
        serials = [row[0] for row in connection.execute(text(
            "SELECT serial FROM repository_certificate WHERE id % 97 = 0"))]
    serial_args: list[object] = [rng.choice(serials) for _ in range(args.queries)]
    devices = args.records * 9 // 20
    device_args: list[object] = [Eui64((FIRST_DEVICE + rng.randrange(devices)).to_bytes(8, "big")).hex
                                 for _ in range(args.queries)]

    by_device_sql = text("SELECT id, serial, issuer, status, usage, device_id FROM repository_certificate "
                         "WHERE device_id = :d ORDER BY id LIMIT 101")
    by_serial_sql = text("SELECT * FROM repository_certificate WHERE serial = :s ORDER BY id")
    with instance.database.engine.connect() as connection:
        explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
        for label, statement, params in (("device_id", by_device_sql, {"d": device_args[0]}),
                                         ("serial", by_serial_sql, {"s": serial_args[0]})):
            plan = connection.execute(text(explain + str(statement)), params).all()
            print(f"plan by {label}: " + " | ".join(str(row[-1]) for row in plan))

        def bare_device(device: object) -> object:
            return connection.execute(by_device_sql, {"d": device}).all()

        def bare_serial(serial: object) -> object:
            return connection.execute(by_serial_sql, {"s": serial}).all()

        # warm caches the same way for both
        timings(bare_device, device_args[:200])
        timings(bare_serial, serial_args[:200])
        bare = {"device_id": timings(bare_device, device_args), "serial": timings(bare_serial, serial_args)}

    timings(lambda d: store.search(device_id=str(d)), device_args[:200])
    store_times = {"device_id": timings(lambda d: store.search(device_id=str(d)), device_args),
                   "serial": timings(lambda s: store.find(str(s)), serial_args)}
    for label in ("device_id", "serial"):
        (median, p99), (bare_median, bare_p99) = store_times[label], bare[label]
        verdict = "meets" if p99 < 5 else "MISSES"
        print(f"{dialect} search by {label:9}: median {median:.3f} ms, p99 {p99:.3f} ms "
              f"(bare SQL median {bare_median:.3f} ms, p99 {bare_p99:.3f} ms; ratio p99 {p99 / bare_p99:.2f}) "
              f"-> {verdict} the 5 ms p99 target")


if __name__ == "__main__":
    main()
