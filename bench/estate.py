"""Estate creation (issue 13 item 4): devices built per second by ``smki estate worker`` processes, each device
two key pairs, two Device Certificates issued through the one issuance path and lodged in the Repository, and
its cells and counters stored, against the bare baseline measured in the same run.

    python -m bench.estate [--devices 20000] [--workers 2] [--database-url URL] [--compare-batch CSRS]

The target: estate creation no slower than the batched Device CSR path. Both are certificate issuance at heart,
so the comparison is in certificates per second: ``--compare-batch N`` runs ``bench.device_batch --count N``
right after, on the same machine, and prints the ratio of the two rates. Without it, compare the printed ratio to
the bare parse+verify+build+sign floor (one core) with the batch path's in docs/device-csr.md (0.43 SQLite,
0.37 PostgreSQL): the same denominator.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time

from bench.baseline import DeviceLoop, measure, ratio
from bench.common import device_csrs, temporary_instance
from bench.scratch import scratch
from smki.estate.jobs import EstateJobs
from smki.estate.testkeys import TestKeyStore
from smki.ra.demo import seed_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one smki estate worker each)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (URL of any database on it): "
                        "the run gets a fresh database there, dropped at the end (default: SQLite)")
    parser.add_argument("--compare-batch", type=int, default=0, metavar="CSRS",
                        help="then run bench.device_batch with this many CSRs and compare the rates")
    args = parser.parse_args()
    logging.getLogger("smki").setLevel(logging.ERROR)

    instance = temporary_instance(args.database_url)
    seed_demo(instance)                                  # the demo Parties own the devices
    TestKeyStore(instance).issue_test_credentials()      # ... and hold the certificates the cells need
    csrs = device_csrs(2000)
    bare = measure(DeviceLoop(csrs, instance.hierarchy.certificate("issuing_dca"),
                              instance.keystore.signer("issuing-dca"),
                              instance.policies.environment.device_policy.dotted_string))

    env = {**os.environ, "SMKI_INSTANCE": str(instance.settings.instance_dir),
           "SMKI_DATABASE_URL": instance.settings.database_url}
    log = instance.settings.instance_dir.parent / "workers.log"
    for _ in range(args.workers):
        scratch().spawn([sys.executable, "-m", "smki.estate.cli", "worker", "--workers", "1"], env=env, log=log)
    jobs = EstateJobs.build(instance)
    time.sleep(3)  # the workers start and load their keys, as in a running deployment
    start = time.perf_counter()
    run_id = jobs.service.create_run(args.devices, requested_by="bench.estate")
    planned = time.perf_counter() - start
    while True:
        progress = jobs.service.progress(run_id)
        if progress.chunks_done + progress.chunks_failed >= progress.chunk_count:
            break
        time.sleep(0.25)
    elapsed = time.perf_counter() - start
    assert progress.devices_done == args.devices, progress
    devices_per_s = args.devices / elapsed
    certificates_per_s = 2 * devices_per_s
    database = instance.database.engine.dialect.name
    for line in bare.lines():
        print(line)
    print(f"plan and schedule the run                     : {planned:8.2f} s")
    print(f"estate creation                               : {devices_per_s:8.0f} devices/s = {certificates_per_s:.0f} "
          f"certificates/s ({args.devices} devices in {elapsed:.2f} s, {args.workers} workers, {database})")
    print(f"ratio (certificates/s) to bare parse+verify+build+sign, one core / {bare.processes} processes: "
          f"{ratio(certificates_per_s, bare.floor)} / {ratio(certificates_per_s, bare.floor_all)}")
    print(f"load average (1 min) at the end               : {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.compare_batch:
        command = [sys.executable, "-m", "bench.device_batch", "--count", str(args.compare_batch),
                   "--workers", str(args.workers)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        found = re.search(r"all results read:\s+([0-9.]+) CSRs/s", output)
        assert found, output
        batch = float(found.group(1))
        print(f"batched Device CSR path, same machine, just after: {batch:8.0f} certificates/s "
              f"({args.compare_batch} CSRs)")
        print(f"estate / batched Device CSR path (certificates/s): {ratio(certificates_per_s, batch)} "
              f"(target >= 1: {'met' if certificates_per_s >= batch else 'NOT met'})")


if __name__ == "__main__":
    main()
