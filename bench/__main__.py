"""``python -m bench [--postgres URL]``: every benchmark once, at a size that runs in a few minutes.

Full-size runs (the issues' targets) are the modules themselves with their defaults:
    python -m bench.served               # issue 12: the served service over HTTP (make bench); --night: 375,000
    python -m bench.ca_issuance          # 20,000 Device Certificates through validation, issuance, storage
    python -m bench.device_batch         # a 50,000-CSR batch, submit to COMPLETED with all results read
    python -m bench.repository_search    # search at 1,000,000 records (add --database-url for PostgreSQL)
    python -m bench.repository_crl       # a CRL of 100,000 revoked entries

Each prints its figures beside a baseline measured in the same run (bench.baseline) and removes what it
made (processes, folders, PostgreSQL databases) however it ends (bench.scratch). docs/benchmarks.md says more.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.scratch import scratch

QUICK = [
    ["bench.served", "--quick"],
    ["bench.ca_issuance", "--count", "4000"],
    ["bench.device_batch", "--count", "10000"],
    ["bench.repository_search", "--records", "100000", "--queries", "500"],
    ["bench.repository_crl", "--revoked", "20000", "--rounds", "2"],
    ["bench.estate_recovery", "--quick"],
    ["bench.drill", "--quick"],
    ["bench.srept_overhead", "--count", "2000"],
]


def database_arguments(module: str, postgres: str | None) -> list[str]:
    if not postgres:
        return []
    return ["--postgres", postgres] if module == "bench.served" else ["--database-url", postgres]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL", help="run each on PostgreSQL (a fresh database each, dropped)")
    args = parser.parse_args(argv)
    scratch()  # SIGTERM and SIGHUP end this run as Ctrl-C does, through the finally below
    failed = []
    for module, *arguments in QUICK:
        command = [sys.executable, "-m", module, *arguments, *database_arguments(module, args.postgres)]
        print(f"\n== {' '.join(command[2:])}", flush=True)
        child = subprocess.Popen(command)
        try:
            code = child.wait()
        finally:
            if child.poll() is None:  # this run was stopped: the benchmark cleans up after itself on SIGTERM
                child.terminate()
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
        if code != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
