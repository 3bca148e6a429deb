"""``bench.estate_recovery`` in miniature: an estate of a few devices, a mode 8 recovery sent to all of them by
two forked senders, every response verified, and the figures printed. (The benchmark itself, thousands of
devices and more, stays out of the suite: ``python -m bench.estate_recovery``.)"""

from __future__ import annotations

import re
import subprocess
import sys

from smki.core.config import PROJECT_ROOT


def test_a_tiny_recovery_run_verifies_every_response_and_prints_its_ratio() -> None:
    run = subprocess.run([sys.executable, "-m", "bench.estate_recovery", "--devices", "6", "--workers", "0",
                          "--senders", "2", "--rounds", "1"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"responses verified / devices\s*: 6 / 6", run.stdout), run.stdout
    assert re.search(r"ratio to the floor \(2 process\(es\)\)\s*:\s*[0-9.]+", run.stdout), run.stdout
    assert re.search(r"peak RSS \(largest process\)\s*:\s*[0-9]+ MiB", run.stdout), run.stdout


def test_one_sender_also_gives_its_ratio_in_cpu_time() -> None:
    run = subprocess.run([sys.executable, "-m", "bench.estate_recovery", "--devices", "4", "--workers", "0",
                          "--senders", "1", "--rounds", "1"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"responses verified / devices\s*: 4 / 4", run.stdout), run.stdout
    assert re.search(r"ratio to the floor in CPU time \(this process\)\s*:\s*[0-9.]+", run.stdout), run.stdout
