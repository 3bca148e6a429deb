"""``python -m bench`` (``make bench``): every benchmark once, at a size that runs in a few minutes.

Full-size runs (the issues' targets) are the modules themselves with their defaults:
    python -m bench.ca_issuance          # 20,000 Device Certificates through validation, issuance, storage
    python -m bench.device_batch         # a 50,000-CSR batch, submit to COMPLETED with all results read
    python -m bench.repository_search    # search at 1,000,000 records (add --database-url for PostgreSQL)
    python -m bench.repository_crl       # a CRL of 100,000 revoked entries
"""

from __future__ import annotations

import subprocess
import sys

QUICK = [
    ["bench.ca_issuance", "--count", "4000"],
    ["bench.device_batch", "--count", "10000"],
    ["bench.repository_search", "--records", "100000", "--queries", "500"],
    ["bench.repository_crl", "--revoked", "20000", "--rounds", "2"],
]


def main() -> int:
    failed = 0
    for module, *arguments in QUICK:
        print(f"\n== {module} {' '.join(arguments)}", flush=True)
        failed += subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
