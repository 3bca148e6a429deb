"""The scheduled job: wakes every ``schedule.check_every_minutes`` and produces the latest month's CSR
Forecast Variance Report once its production time has come, so nobody has to remember. Several
schedulers may run (one per host): the claim in the database lets exactly one of them produce it."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from smki.instance import Instance
from smki.reports.delivery import VarianceReporting

log = logging.getLogger(__name__)


class ReportScheduler:
    def __init__(self, instance: Instance) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.reporting = VarianceReporting(instance)
        self.scheduler: Any = BackgroundScheduler(timezone="UTC",
                                                  job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler.add_job(self.check, "interval", id="csr-variance-report",
                               minutes=self.reporting.policy.schedule.check_every_minutes,
                               next_run_time=dt.datetime.now(dt.UTC))

    def check(self) -> None:
        delivery = self.reporting.run_due()
        if delivery is not None:
            log.info("CSR variance report for %s delivered at %s (due %s, %s)", delivery.period, delivery.lodged_at,
                     delivery.due_date, "late" if delivery.late else "on time")

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)
