"""``bench.drill`` in miniature: the method 3 drill over a few devices, run for real, its time printed against
the estate command floor, and everything it made removed. (The benchmark itself stays out of the suite:
``python -m bench.drill --devices 1000000``.)"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from smki.core.config import PROJECT_ROOT


def test_a_tiny_drill_runs_recovers_its_devices_and_prints_its_ratio() -> None:
    before = set(Path(tempfile.gettempdir()).glob("smki-bench-*"))
    run = subprocess.run([sys.executable, "-m", "bench.drill", "--devices", "6"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"drill / floor: [0-9.]+ \(target <= 1.25", run.stdout), run.stdout
    assert re.search(r"recovered [1-9][0-9]*, residual 0,", run.stdout), run.stdout
    assert set(Path(tempfile.gettempdir()).glob("smki-bench-*")) <= before   # the host and its world are gone
