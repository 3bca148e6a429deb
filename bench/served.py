"""The served service, measured from outside over HTTP, as a user starts it (``make bench``).

    python -m bench.served [--quick] [--postgres URL] [--records N] [--batches N] [--batch-size N]
                           [--night [CSRS]] [--requests N] [--searches N] [--phases issuance,batches,search]

A fresh instance in a temporary folder (``smki demo``: the demo population), ``smki serve`` started as a
subprocess on a free loopback port exactly as a user starts it (its defaults: workers, threads, its batch
worker and publisher), then, from this process, concurrent HTTP clients (:mod:`bench.http_load`):

1. **Organisation certificate issuance** through the RA JSON API (``POST /api/v1/ra/csr/organisation``, the
   demo ARO's token) with 1, 8 and 16 clients: rate, p50/p99, non-2xx, and the 5xx count shown loudly.
2. **The batched Device CSR service** as shipped: ``--batches`` successive batches of ``--batch-size`` CSRs,
   each submitted, polled to ``COMPLETED`` and every result read and counted; each batch printed. ``--night``
   instead submits 375,000 CSRs at once (the real service's nightly capacity, as batches of at most 50,000)
   and measures until the last result is read.
3. **Appendix O search** (``POST /services/certificatesearch``) with 8 clients over ``--records`` synthetic
   Repository records (bulk-loaded by :mod:`bench.repository_data`; Device IDs nine in ten, Organisation
   EUI-64s one in ten), with ``/health`` at 8 clients just before and just after, in the same run.

Every figure is printed beside its baseline as a ratio: the bare ``cryptography`` loops of
:mod:`bench.baseline` (one core and one process per core, measured in this process before the server starts
and again after it stops; the higher of each is used) or ``/health``. Then issue 12's targets, met or not.
Everything (server processes, temporary folder, PostgreSQL database) is removed on any exit
(:mod:`bench.scratch`). The machine's other load moves every rate; the ratios, measured in the same run,
move less.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from bench.baseline import BareRates, DeviceLoop, available_cores, measure, ratio
from bench.common import device_csrs
from bench.http_load import Load, Request, run_load
from bench.repository_data import FIRST_DEVICE, bulk_load, synthetic_rows, template_der
from bench.scratch import scratch, stop_group
from smki.core.config import Settings
from smki.core.eui64 import Eui64
from smki.csrgen import organisation_csr
from smki.instance import Instance

# Issue 12's targets and the figures it measured ("today").
TODAY_ORG_RATE = 100.0            # Organisation issuance over HTTP, requests/s, whatever the clients
ORG_RATE_FACTOR = 4.0             # at least 4x today's rate with 8 clients ...
ORG_P99_MS = 50.0                 # ... p99 under 50 ms, and zero errors
SEARCH_RECORDS = 1_000_000        # the search target's size
SEARCH_HEALTH_RATIO = 0.5         # at least half of /health's rate with 8 clients ...
SEARCH_P99_MS = 10.0              # ... p99 under 10 ms
BATCH_SIZE = 50_000               # the batch target's size ...
BATCH_FLOOR_RATIO = 0.5           # ... at least 0.5 of bare parse+verify+build+sign on all cores ...
BATCH_COUNT = 8                   # ... for each of 8 successive batches
NIGHT_CSRS = 375_000              # the real service's nightly capacity across all subscribers
MAX_BATCH = 50_000                # the service's largest batch

ISSUANCE_CLIENTS = (1, 8, 16)
SEARCH_CLIENTS = 8
NAMESPACE = "urn:smki-sandbox:device-csr:1.0"
NS = f"{{{NAMESPACE}}}"


@dataclass
class Sizes:
    requests: int
    searches: int
    records: int
    batches: int
    batch_size: int
    phase_seconds: float


QUICK = Sizes(requests=200, searches=2_000, records=20_000, batches=2, batch_size=10_000, phase_seconds=60)
FULL = Sizes(requests=2_000, searches=20_000, records=SEARCH_RECORDS, batches=BATCH_COUNT, batch_size=BATCH_SIZE,
             phase_seconds=120)


@dataclass
class Batch:
    label: str
    csrs: int
    seconds: float
    accepted_seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    completed: bool = True
    note: str = ""

    @property
    def rate(self) -> float:
        return self.csrs / self.seconds if self.seconds else 0.0

    @property
    def issued(self) -> int:
        return self.statuses.get("SUCCESS", 0)


@dataclass
class Results:
    issuance: list[Load] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    night: Batch | None = None
    health: list[Load] = field(default_factory=list)
    search: Load | None = None
    records: int = 0
    audit: str = ""


class Service:
    """``smki serve`` on a loopback port, in a process group of its own, with the instance it serves."""

    def __init__(self, work: Path, postgres: str | None, serve_options: list[str]) -> None:
        self.work = work
        self.instance_dir = work / "instance"
        # As a user starts it: only where the instance is (and the database, for PostgreSQL); nothing else
        # of this shell's SMKI_ settings, so the service runs on its own defaults (main() has removed them
        # from this process too, so that its own view of the instance is the server's).
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SMKI_")}
        self.env["SMKI_INSTANCE"] = str(self.instance_dir)
        self.database_url: str | None = None  # SQLite where smki puts it by default
        if postgres:
            self.database_url = scratch().database(postgres)
            self.env["SMKI_DATABASE_URL"] = self.database_url
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.serve_options = serve_options
        self.log = work / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def smki(self, *arguments: str, timeout: float = 600) -> str:
        """Run an ``smki`` command for this instance; its standard output."""
        done = subprocess.run([*_smki(), *arguments], env=self.env, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"smki {' '.join(arguments)} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-2000:]}")
        return done.stdout.decode()

    def instance(self) -> Instance:
        return Instance(Settings.from_env(instance_dir=self.instance_dir, database_url=self.database_url))

    def start(self, timeout: float = 120) -> None:
        command = [*_smki(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.serve_options]
        self.process = scratch().spawn(command, env=self.env, log=self.log)
        # Ready when our server has named our port in its log (so the /health that answers is ours, not that
        # of a process that took the port between our probe and its bind) and /health answers.
        ours = f"127.0.0.1:{self.port}".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                if ours in self.log.read_bytes():
                    with _DIRECT.open(f"{self.base_url}/health", timeout=2) as response:
                        if response.status == 200:
                            return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"smki serve did not answer /health within {timeout:.0f} s:\n{self.log_tail()}")

    def check(self) -> None:
        """Raise, with the end of its log, if the server has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"smki serve exited ({self.process.returncode}):\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=20)

    @property
    def group(self) -> int | None:
        return self.process.pid if self.process else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _smki() -> list[str]:
    """This installation's ``smki`` command, as a user runs it (the console script beside the interpreter)."""
    script = Path(sys.executable).with_name("smki")
    return [str(script)] if script.exists() else [sys.executable, "-m", "smki.cli"]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the population the clients use ----------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    aro_token: str          # an ARO of a supplier with Organisation and Device scope
    user_id: Eui64          # that supplier's IS User ID
    api_key: str            # a Repository API key


def demo_credentials(service: Service) -> Credentials:
    from smki.ra.demo import PARTIES  # which demo ARO may do both (names, not tokens, live in code)

    service.smki("demo")
    data = json.loads((service.instance_dir / "demo" / "credentials.json").read_text())
    party, _category, _roles, members = PARTIES[0]
    aro = next(name for name, role, scopes in members if role == "aro" and {"organisation", "device"} <= set(scopes))
    token = next(p["api_token"] for p in data["people"] if p["name"] == aro)
    user_id = next(p["user_ids"]["IS"] for p in data["parties"] if p["name"] == party)
    api_key = service.smki("repository", "issue-api-key", "--holder", "bench-served").strip().splitlines()[-1]
    return Credentials(token, Eui64.parse(user_id), api_key)


def organisation_requests(count: int, credentials: Credentials) -> list[Request]:
    headers = {"Authorization": f"Bearer {credentials.aro_token}", "Content-Type": "application/pkcs10"}
    out = []
    for n in range(count):
        csr = organisation_csr(ec.generate_private_key(ec.SECP256R1()), "02", credentials.user_id,
                               "digitalSignature" if n % 2 == 0 else "keyAgreement")
        out.append(Request("POST", "/api/v1/ra/csr/organisation", csr.public_bytes(Encoding.PEM), headers))
    return out


def search_requests(count: int, records: int, api_key: str, seed: int = 11) -> list[Request]:
    """Searches for records that exist: Device IDs nine times in ten, Organisation EUI-64s once."""
    rng = random.Random(seed)
    headers = {"Content-Type": "application/xml"}
    out = []
    for n in range(count):
        if n % 10 == 9 and records >= 10:
            name, value = "CertificateSubjectName", 0x90B3D51F30000000 + rng.randrange(records // 10)
        else:
            name, value = "CertificateSubjectAltName", FIRST_DEVICE + rng.randrange(max(1, records // 2))
        body = (f'<?xml version="1.0" encoding="utf-8"?><CertificateSearchRequest><{name}>'
                f"{Eui64(value.to_bytes(8, 'big')).hyphenated}</{name}></CertificateSearchRequest>").encode()
        out.append(Request("POST", f"/services/certificatesearch?apikey={api_key}", body, headers))
    return out


def batch_payload(csrs: list[bytes], reference: str) -> bytes:
    body = "".join(f'<DeviceCSR ID="csr-{n}">{base64.b64encode(der).decode()}</DeviceCSR>'
                   for n, der in enumerate(csrs))
    return (f'<SubmitCSRBatch xmlns="{NAMESPACE}" ID="{reference}"><Version>1.0</Version>{body}'
            "</SubmitCSRBatch>").encode()


# --- the batched Device CSR service ----------------------------------------------------------------------

async def _batches(base_url: str, token: str, payloads: list[tuple[str, int, bytes]], max_seconds: float,
                   poll_seconds: float = 0.25) -> tuple[float, list[Batch]]:
    """Submit every payload, poll each to COMPLETED, read every result. (seconds for all, one Batch each)."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=max_seconds)
    async with aiohttp.ClientSession(base_url, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        start = time.perf_counter()
        submitted: list[tuple[str, int, str, float]] = []
        for label, count, payload in payloads:
            async with session.post("/1.0/PortalCSRBatch/SubmitCSRBatch", data=payload,
                                    headers={**headers, "Content-Type": "application/xml"}) as response:
                answer = etree.fromstring(await response.read())
            batch_id = answer.findtext(f"{NS}BatchId")
            if response.status != 200 or not batch_id:
                raise RuntimeError(f"{label}: SubmitCSRBatch answered HTTP {response.status}: "
                                   f"{etree.tostring(answer)[:500]!r}")
            submitted.append((label, count, batch_id, time.perf_counter() - start))
        out = []
        deadline = start + max_seconds
        for label, count, batch_id, accepted in submitted:
            statuses: Counter[str] = Counter()
            completed = False
            while time.perf_counter() < deadline:
                async with session.get(f"/1.0/PortalCSRBatch/CSRBatchResult?BatchId={batch_id}",
                                       headers=headers) as response:
                    body = await response.read()
                result = etree.fromstring(body)
                if result.findtext(f"{NS}BatchStatus") == "COMPLETED":
                    statuses.update(e.text or "" for e in result.iterfind(f"{NS}DeviceCertificate/{NS}Status"))
                    completed = True
                    break
                await asyncio.sleep(poll_seconds)
            out.append(Batch(label, count, time.perf_counter() - start, accepted, statuses, completed,
                             "" if completed else f"not COMPLETED within {max_seconds:.0f} s"))
        return time.perf_counter() - start, out


def run_batches(service: Service, token: str, sizes: Sizes, first_device: int) -> list[Batch]:
    print(f"making {sizes.batches} x {sizes.batch_size} Device CSRs ...", flush=True)
    all_csrs = device_csrs(sizes.batches * sizes.batch_size, first_device)
    out = []
    for n in range(sizes.batches):
        csrs = all_csrs[n * sizes.batch_size:(n + 1) * sizes.batch_size]
        payload = batch_payload(csrs, f"bench-{n + 1}")
        limit = max(300.0, sizes.batch_size / 50)
        _seconds, (batch,) = asyncio.run(_batches(service.base_url, token, [(f"batch {n + 1}", len(csrs), payload)],
                                                  limit))
        print(f"  {_batch_line(batch)}", flush=True)
        out.append(batch)
        service.check()
        if not batch.completed:
            break
    return out


def run_night(service: Service, token: str, first_device: int, total: int, part: int) -> Batch:
    print(f"making {total} Device CSRs ...", flush=True)
    csrs = device_csrs(total, first_device)
    payloads = [(f"night part {n // part + 1}", len(csrs[n:n + part]), batch_payload(csrs[n:n + part],
                                                                                    f"night-{n // part + 1}"))
                for n in range(0, len(csrs), part)]
    del csrs
    seconds, parts = asyncio.run(_batches(service.base_url, token, payloads, max(1800.0, total / 50)))
    statuses: Counter[str] = Counter()
    for done in parts:
        statuses.update(done.statuses)
    night = Batch(f"night: {total} CSRs in {len(payloads)} batches submitted together", total, seconds,
                  max(p.accepted_seconds for p in parts), statuses, all(p.completed for p in parts),
                  "; ".join(p.note for p in parts if p.note))
    print(f"  {_batch_line(night)}", flush=True)
    return night


def _batch_line(batch: Batch) -> str:
    others = {k: v for k, v in batch.statuses.items() if k != "SUCCESS"}
    tail = f"; NOT SUCCESS: {dict(others)}" if others else ""
    missing = batch.csrs - sum(batch.statuses.values())
    if missing:
        tail += f"; {missing} results missing"
    return (f"{batch.label}: {batch.rate:7.0f} CSRs/s ({batch.csrs} submitted, accepted after "
            f"{batch.accepted_seconds:.2f} s, {batch.issued} issued and read in {batch.seconds:.1f} s){tail}"
            f"{' ' + batch.note if batch.note else ''}")


# --- the run ---------------------------------------------------------------------------------------------

def baseline(instance: Instance, csrs: list[bytes]) -> BareRates:
    loop = DeviceLoop(csrs, instance.hierarchy.certificate("issuing_dca"), instance.keystore.signer("issuing-dca"),
                      instance.policies.environment.device_policy.dotted_string)
    return measure(loop)


def verdict(ok: bool, full_size: bool) -> str:
    word = "met" if ok else "NOT met"
    return word if full_size else f"{word} (at this run's size; the target's is larger)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a run of a few minutes")
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL: a fresh database on this server, "
                        "dropped at the end (default: SQLite, smki's default)")
    parser.add_argument("--records", type=int, help=f"Repository records to search (full: {SEARCH_RECORDS:,})")
    parser.add_argument("--searches", type=int, help="search requests (and as many /health requests, twice)")
    parser.add_argument("--requests", type=int, help="Organisation CSRs per number of clients")
    parser.add_argument("--batches", type=int, help=f"successive batches (full: {BATCH_COUNT}, quick: 2)")
    parser.add_argument("--batch-size", type=int, help=f"CSRs per batch (full: {BATCH_SIZE:,})")
    parser.add_argument("--night", nargs="?", type=int, const=NIGHT_CSRS, metavar="CSRS",
                        help=f"instead of successive batches, {NIGHT_CSRS:,} CSRs (or CSRS) submitted at once, as "
                        f"batches of --batch-size (default {MAX_BATCH:,})")
    parser.add_argument("--phase-seconds", type=float, help="time limit of each load phase")
    parser.add_argument("--phases", default="issuance,batches,search",
                        help="which measurements, comma-separated (default: all)")
    parser.add_argument("--serve-option", action="append", default=[], metavar="OPTION",
                        help="pass an option to smki serve (repeatable), e.g. --serve-option=--workers=4")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(requests=args.requests or base.requests, searches=args.searches or base.searches,
                  records=args.records if args.records is not None else base.records,
                  batches=args.batches or base.batches, batch_size=min(args.batch_size or base.batch_size, MAX_BATCH),
                  phase_seconds=args.phase_seconds or base.phase_seconds)
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = phases - {"issuance", "batches", "search"}
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}")

    for variable in [name for name in os.environ if name.startswith("SMKI_")]:
        del os.environ[variable]  # the service's defaults, in the server and in this process alike
    work = scratch().directory("smki-served-")
    service = Service(work, args.postgres, args.serve_option)
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"== served benchmark, {database}, {available_cores()} cores, instance in {service.instance_dir}",
          flush=True)
    credentials = demo_credentials(service)
    instance = service.instance()
    sample = device_csrs(2000, first_device=0x00DB100000000000)
    print("measuring the bare baseline (before the server starts) ...", flush=True)
    before = baseline(instance, sample)
    print(f"  load average (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    org_requests = {n: organisation_requests(sizes.requests, credentials) for n in ISSUANCE_CLIENTS} \
        if "issuance" in phases else {}

    results = Results()
    service.start()
    print(f"smki serve is up on {service.base_url} (log: {service.log})", flush=True)
    try:
        if "issuance" in phases:
            run_load(service.base_url, "warm-up", 16, organisation_requests(32, credentials), 60)
            for clients in ISSUANCE_CLIENTS:
                load = run_load(service.base_url, "organisation issuance", clients, org_requests[clients],
                                sizes.phase_seconds, service.group)
                service.check()
                results.issuance.append(load)
                print("  " + load.summary(), flush=True)
                if load.errors_line():
                    print(load.errors_line(), flush=True)
        if "batches" in phases:
            if args.night:
                results.night = run_night(service, credentials.aro_token, 0x00DB200000000000, args.night,
                                          min(args.batch_size or MAX_BATCH, MAX_BATCH))
            else:
                results.batches = run_batches(service, credentials.aro_token, sizes, 0x00DB200000000000)
        if "search" in phases:
            print(f"loading {sizes.records} Repository records ...", flush=True)
            start = time.perf_counter()
            results.records = bulk_load(instance, synthetic_rows(sizes.records, template_der(instance)))
            print(f"  loaded in {time.perf_counter() - start:.1f} s", flush=True)
            health = [Request("GET", "/health")] * sizes.searches
            searches = search_requests(sizes.searches, sizes.records, credentials.api_key)
            run_load(service.base_url, "warm-up", SEARCH_CLIENTS * 2,
                     search_requests(200, sizes.records, credentials.api_key, seed=5) + health[:200], 60)
            for label, requests in (("/health", health), ("Appendix O search", searches), ("/health", health)):
                load = run_load(service.base_url, label, SEARCH_CLIENTS, requests, sizes.phase_seconds,
                                service.group)
                if label == "/health":
                    results.health.append(load)
                else:
                    results.search = load
                print("  " + load.summary(), flush=True)
                if load.errors_line():
                    print(load.errors_line(), flush=True)
                service.check()
        results.audit = audit_verdict(service)
    except BaseException:
        print(f"-- the end of the server's log ({service.log}, removed on exit):\n{service.log_tail()}",
              file=sys.stderr, flush=True)
        raise
    finally:
        service.stop()
        from smki.core.db import dispose_all

        dispose_all()
    print("measuring the bare baseline again (the server stopped) ...", flush=True)
    after = baseline(instance, sample)
    report(results, before, after, sizes, database, full_search=sizes.records >= SEARCH_RECORDS)
    return 0


def audit_verdict(service: Service) -> str:
    done = subprocess.run([*_smki(), "audit", "verify"], env=service.env, capture_output=True, timeout=600,
                          check=False)
    text = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
    return f"smki audit verify: exit {done.returncode}" + (f" ({text[-1][:200]})" if text else "")


def report(results: Results, before: BareRates, after: BareRates, sizes: Sizes, database: str,
           full_search: bool) -> None:
    bare = before.stricter(after)
    cores = bare.processes
    print(f"\n== figures ({database}), each beside its baseline from this run")
    print("  the baseline: the higher of two measurements (before the server started / after it stopped)")
    for line in bare.lines(("before", before), ("after", after)):
        print("  " + line)
    for load in results.issuance:
        print(f"  {load.summary()}\n      ratio to bare parse+verify+build+sign on {cores} cores: "
              f"{ratio(load.rate, bare.floor_all)}; 5xx: {load.server_errors}")
        if load.server_errors:
            print(f"  !!! {load.server_errors} HTTP 5xx with {load.clients} clients: {dict(load.codes)}")
    for batch in [*results.batches, *([results.night] if results.night else [])]:
        print(f"  {_batch_line(batch)}\n      ratio to bare parse+verify+build+sign on {cores} cores: "
              f"{ratio(batch.rate, bare.floor_all)}; one core: {ratio(batch.rate, bare.floor)}")
    ceiling = max((h.rate for h in results.health), default=0.0)
    for load in results.health:
        print(f"  {load.summary()}\n      this client's own ceiling (its CPU per request): "
              f"{load.client_ceiling:.0f} req/s on one core")
    if results.search:
        print(f"  {results.search.summary()} [{results.records:,} records]\n      ratio to /health (the higher of "
              f"the two): {ratio(results.search.rate, ceiling)}")
    if results.audit:
        print(f"  {results.audit}")

    print(f"\n== issue 12 targets ({database}, 2-core target machine; this machine: {cores} cores)")
    eight = next((load for load in results.issuance if load.clients == 8), None)
    if eight:
        target = TODAY_ORG_RATE * ORG_RATE_FACTOR
        print(f"  Organisation issuance, 8 clients: errors {eight.non_2xx} (zero: {verdict(eight.non_2xx == 0, True)});"
              f" {eight.rate:.0f}/s >= {target:.0f}/s (4x today's ~{TODAY_ORG_RATE:.0f}/s): "
              f"{verdict(eight.rate >= target, True)}; p99 {eight.percentile(0.99):.1f} ms < {ORG_P99_MS:.0f} ms: "
              f"{verdict(eight.percentile(0.99) < ORG_P99_MS, True)}")
    for load in results.issuance:
        if load.clients != 8 and load.server_errors:
            print(f"  Organisation issuance, {load.clients} clients: {load.server_errors} HTTP 5xx: NOT met "
                  "(no 5xx under concurrency)")
    if results.search and ceiling:
        full = full_search
        search_ratio = results.search.rate / ceiling
        p99 = results.search.percentile(0.99)
        print(f"  Appendix O search, {results.records:,} records, 8 clients: {search_ratio:.2f} of /health >= "
              f"{SEARCH_HEALTH_RATIO}: {verdict(search_ratio >= SEARCH_HEALTH_RATIO, full)}; p99 {p99:.1f} ms < "
              f"{SEARCH_P99_MS:.0f} ms: {verdict(p99 < SEARCH_P99_MS, full)}; non-2xx {results.search.non_2xx}")
    if results.batches:
        full = sizes.batch_size >= BATCH_SIZE and len(results.batches) >= BATCH_COUNT
        each = [b.rate / bare.floor_all for b in results.batches]
        ok = all(r >= BATCH_FLOOR_RATIO for r in each) and all(b.completed and b.issued == b.csrs
                                                              for b in results.batches)
        print(f"  {len(results.batches)} successive batches of {sizes.batch_size:,}: "
              + ", ".join(f"{r:.2f}" for r in each)
              + f" of bare parse+verify+build+sign on {cores} cores, each >= {BATCH_FLOOR_RATIO} with every CSR "
              f"issued: {verdict(ok, full)}")
    if results.night:
        night = results.night
        print(f"  night of {night.csrs:,}: {night.rate:.0f} CSRs/s, {night.rate / bare.floor_all:.2f} of bare "
              f"parse+verify+build+sign on {cores} cores; {night.issued:,} issued "
              f"({'all' if night.issued == night.csrs else 'NOT all'}); no target of its own")
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.2f}; other work on this machine moves "
          "every rate, the ratios less", flush=True)


if __name__ == "__main__":
    sys.exit(main())
