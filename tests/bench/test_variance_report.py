"""The variance report benchmark's machinery at a tiny size: it loads, counts, agrees with its baseline and
renders (the full run, 2,000,000 CSRs, is ``python -m bench.variance_report``)."""

from __future__ import annotations

from smki.instance import Instance
from smki.schema import migrate


def test_variance_report_benchmark_runs_at_a_tiny_size(instance: Instance) -> None:
    from bench.variance_report import run

    migrate(instance.database)
    figures = run(instance, subscribers_count=3, csrs=600, repeats=1)
    assert set(figures) == {"baseline", "figures", "csv", "html", "pdf"}
