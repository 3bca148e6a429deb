"""The recording-overhead benchmark runs end to end at a tiny size (the figures are for bench/, not here): both
batches complete, and the one made while the run was open is recorded and passes BAT-01 and BAT-02."""

from __future__ import annotations

import subprocess
import sys

from smki.core.config import PROJECT_ROOT


def test_the_overhead_benchmark_runs_and_records_the_batch() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.srept_overhead", "--count", "20", "--rounds", "1"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ratio with / without" in done.stdout
    assert "recorded 2 interactions; scenarios passed: BAT-01, BAT-02" in done.stdout
