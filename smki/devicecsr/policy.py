"""Reads ``policies/device_csr_limits.yaml``: batch size, retention, processing window, soft limits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from smki.core.errors import ConfigurationError
from smki.core.policy import load_yaml

POLICY_FILE = "device_csr_limits.yaml"


@dataclass(frozen=True)
class DailyWindow:
    """A time-of-day window in a zone; it may wrap past midnight (20:00-08:00)."""

    start: dt.time
    end: dt.time
    zone: ZoneInfo

    @classmethod
    def parse(cls, data: dict[str, Any], what: str) -> DailyWindow:
        try:
            return cls(dt.time.fromisoformat(str(data["start"])), dt.time.fromisoformat(str(data["end"])),
                       ZoneInfo(str(data.get("timezone", "Europe/London"))))
        except (KeyError, ValueError) as exc:
            raise ConfigurationError("CA:CFG20", f"{POLICY_FILE}: {what} needs start and end as HH:MM "
                                     f"and a timezone ({exc})") from exc

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
    data = load_yaml(directory / POLICY_FILE)
    try:
        batch, adhoc, limits, processing = data["batch"], data["adhoc"], data["limits"], data["processing"]
        window = batch.get("processing_window")
        return DeviceCsrPolicy(
            enforce=bool(data.get("enforce", False)),
            max_batch_csrs=int(batch["max_csrs"]),
            max_batch_bytes=int(batch["max_request_bytes"]),
            retention=dt.timedelta(days=float(batch["retention_days"])),
            processing_window=DailyWindow.parse(window, "processing_window") if window else None,
            max_adhoc_bytes=int(adhoc["max_request_bytes"]),
            certificate_threshold=int(adhoc["certificate_threshold"]),
            limits=Limits(
                adhoc_min_interval_core=float(limits["adhoc_min_interval_core_seconds"]),
                adhoc_min_interval_other=float(limits["adhoc_min_interval_other_seconds"]),
                core_hours=DailyWindow.parse(limits["core_hours"], "core_hours"),
                portal_adhoc_per_24h=int(limits["portal_adhoc_per_24h"]),
                batched_csrs_per_24h=int(limits["batched_csrs_per_24h"]),
                nightly_capacity_all_parties=int(limits["nightly_capacity_all_parties"]),
                min_poll_interval=float(limits["min_poll_interval_seconds"]),
            ),
            chunk_size=max(1, int(processing["chunk_size"])),
            lease=dt.timedelta(seconds=float(processing["lease_seconds"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError("CA:CFG21", f"{POLICY_FILE} is incomplete or malformed: {exc!r}") from exc
