"""Repository search at one million records: by Device ID and by serial, at the storage layer.

    python -m bench.repository_search [--records 1000000] [--queries 2000] [--database-url URL] [--profile N]

Loads synthetic records in bulk, then times :meth:`CertificateRepository.search` (by Device ID) and
:meth:`CertificateRepository.find` (by serial), each against the bare indexed SQL query on the same
engine in the same run (the baseline). Prints median and p99 and the query plans. Target (issue 4):
p99 under 5 ms per search at one million records, SQLite and PostgreSQL.

Then the Appendix O service itself, in this process, with no HTTP server or client in the way: the WSGI app
answers ``POST /services/certificatesearch`` (Device IDs nine in ten, Organisation EUI-64s one in ten, as
:mod:`bench.served` sends) and ``GET /health``, and the CPU time per request of each (this process's, the
request log's flusher thread included) is printed with their ratio: what a search costs a web worker beyond
the framework's floor. ``--profile N`` prints the N functions with the most cumulative time (cProfile).
The plans of the service's own statements (the key join included) are printed too, to show each uses an
index.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Flask
from sqlalchemy import text
from werkzeug.test import EnvironBuilder

from bench.repository_data import (
    FIRST_DEVICE,
    bench_instance,
    bulk_load,
    synthetic_rows,
    template_der,
)
from repository.access import KEY_PARAMETER, keyed_statement
from repository.request_log import flush_all
from repository.store import CertificateRepository, by_subject_criteria
from smki.core.eui64 import Eui64
from smki.instance import Instance
from smki.web import create_app


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
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions with the most cumulative time of the served searches")
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

    served_cpu(instance, args.records, args.queries, args.profile)


def _environs(requests: list[tuple[str, str, bytes | None]]) -> list[dict[str, Any]]:
    return [EnvironBuilder(path=path, method=method, data=body,
                           content_type="application/xml" if body else None).get_environ()
            for method, path, body in requests]


def _answer(app: Flask, environs: list[dict[str, Any]]) -> tuple[float, list[str]]:
    """Run each request through the WSGI app; (CPU seconds of this process, each answer's status)."""
    statuses: list[str] = []

    def start_response(status: str, _headers: list[tuple[str, str]], _exc_info: object = None) -> Any:
        statuses.append(status)

    start = time.process_time()
    for environ in environs:
        for _chunk in app(environ, cast(Any, start_response)):
            pass
    flush_all()  # the request log's rows are part of the searches' cost
    return time.process_time() - start, statuses


def served_cpu(instance: Instance, records: int, queries: int, profile: int) -> None:
    """CPU per Appendix O search answered by the WSGI app, against ``/health`` in the same process."""
    from repository.access import RepositoryAccess

    key = RepositoryAccess(instance.database).issue_api_key("bench-repository-search")
    app = create_app(instance)
    rng = random.Random(13)
    searches: list[tuple[str, str, bytes | None]] = []
    for n in range(queries):
        if n % 10 == 9 and records >= 10:
            name, value = "CertificateSubjectName", 0x90B3D51F30000000 + rng.randrange(records // 10)
        else:
            name, value = "CertificateSubjectAltName", FIRST_DEVICE + rng.randrange(max(1, records // 2))
        body = (f'<?xml version="1.0" encoding="utf-8"?><CertificateSearchRequest><{name}>'
                f"{Eui64(value.to_bytes(8, 'big')).hyphenated}</{name}></CertificateSearchRequest>").encode()
        searches.append(("POST", f"/services/certificatesearch?apikey={key}", body))
    health: list[tuple[str, str, bytes | None]] = [("GET", "/health", None)] * queries

    _answer(app, _environs(searches[:200] + health[:200]))  # warm: each app builds its caches on first use
    health_cpu, _ = _answer(app, _environs(health))
    search_cpu, statuses = _answer(app, _environs(searches))
    found = sum(s.startswith("200") for s in statuses)
    dialect = instance.database.engine.dialect.name
    print(f"{dialect} served in-process (WSGI app, one thread): CPU per search {search_cpu / queries * 1e3:.3f} ms, "
          f"per /health {health_cpu / queries * 1e3:.3f} ms; search/health {search_cpu / health_cpu:.2f} "
          f"({found} of {queries} searches found certificates)")

    with instance.database.engine.connect() as connection:
        explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
        device = Eui64((FIRST_DEVICE + 1).to_bytes(8, "big")).hex
        for column in ("device_id", "subject_eui"):
            statement = keyed_statement(by_subject_criteria(column), 1000)
            compiled = statement.compile(connection, compile_kwargs={"render_postcompile": True})
            params = {**compiled.params, "subject": device, KEY_PARAMETER: "0" * 64}
            plan = connection.exec_driver_sql(explain + str(compiled), _positional(compiled, params)
                                              if connection.dialect.paramstyle == "qmark" else params).all()
            print(f"plan of the service's search by {column}: " + " | ".join(str(row[-1]) for row in plan))

    if profile:
        profiler = cProfile.Profile()
        environs = _environs(searches)
        profiler.enable()
        _answer(app, environs)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile)
        print(out.getvalue())


def _positional(compiled: Any, params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in compiled.positiontup)


if __name__ == "__main__":
    main()
