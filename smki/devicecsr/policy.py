"""``policies/device_csr_limits.yaml`` as the Device CSR services use it: batch size, retention, processing window,
soft limits (the file's schema and checks are in :mod:`smki.core.policyfiles.devicecsr`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from smki.core.policy import load_device_csr_limits
from smki.core.policyfiles.devicecsr import Window


@dataclass(frozen=True)
class DailyWindow:
    """A time-of-day window in a zone; it may wrap past midnight (20:00-08:00)."""

    start: dt.time
    end: dt.time
    zone: dt.tzinfo

    @classmethod
    def of(cls, window: Window) -> DailyWindow:
        return cls(window.start, window.end, ZoneInfo(window.timezone))

    def contains(self, moment: dt.datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        """The next instant at or after ``moment`` inside the window."""
        if self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        opening = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if opening <= local:
            opening += dt.timedelta(days=1)
        return opening.astimezone(dt.UTC)


@dataclass(frozen=True)
class Limits:
    adhoc_min_interval_core: float
    adhoc_min_interval_other: float
    core_hours: DailyWindow
    portal_adhoc_per_24h: int
    batched_csrs_per_24h: int
    nightly_capacity_all_parties: int
    min_poll_interval: float


@dataclass(frozen=True)
class DeviceCsrPolicy:
    enforce: bool
    max_batch_csrs: int
    max_batch_bytes: int
    retention: dt.timedelta
    processing_window: DailyWindow | None
    max_adhoc_bytes: int
    certificate_threshold: int
    limits: Limits
    chunk_size: int
    lease: dt.timedelta

    def window_open(self, moment: dt.datetime) -> bool:
        return self.processing_window is None or self.processing_window.contains(moment)

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        return moment if self.processing_window is None else self.processing_window.next_opening(moment)


@cache
def load_device_csr_policy(directory: Path) -> DeviceCsrPolicy:
    data = load_device_csr_limits(directory)  # validated and cross-checked there (CA:CFG21, CA:CFG20)
    batch, limits = data.batch, data.limits
    return DeviceCsrPolicy(
        enforce=data.enforce,
        max_batch_csrs=batch.max_csrs,
        max_batch_bytes=batch.max_request_bytes,
        retention=dt.timedelta(days=batch.retention_days),
        processing_window=DailyWindow.of(batch.processing_window) if batch.processing_window else None,
        max_adhoc_bytes=data.adhoc.max_request_bytes,
        certificate_threshold=data.adhoc.certificate_threshold,
        limits=Limits(
            adhoc_min_interval_core=limits.adhoc_min_interval_core_seconds,
            adhoc_min_interval_other=limits.adhoc_min_interval_other_seconds,
            core_hours=DailyWindow.of(limits.core_hours),
            portal_adhoc_per_24h=limits.portal_adhoc_per_24h,
            batched_csrs_per_24h=limits.batched_csrs_per_24h,
            nightly_capacity_all_parties=limits.nightly_capacity_all_parties,
            min_poll_interval=limits.min_poll_interval_seconds,
        ),
        chunk_size=data.processing.chunk_size,
        lease=dt.timedelta(seconds=data.processing.lease_seconds),
    )
