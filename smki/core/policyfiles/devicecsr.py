"""``device_csr_limits.yaml`` (the Device CSR services' limits) and ``device_csr_gate.yaml`` (the stand-in gate)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, PlainSerializer, PlainValidator, field_validator
from pydantic_core import PydanticCustomError

from smki.core.policyfiles.base import DeviceId, Names, PolicyContext, PolicyModel, Problem, time_of_day

BAD_WINDOW = "CA:CFG20"
MAX_CERTIFICATES = "max_certificates_per_device"  # PolicyContext: eligibility.yaml's per-device limit


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(BAD_WINDOW, "an IANA time zone name, such as Europe/London") from None
    return name


def _window_time(value: Any) -> dt.time:
    try:
        return time_of_day(value)
    except ValueError as exc:
        raise PydanticCustomError(BAD_WINDOW, str(exc)) from None


WindowTime = Annotated[dt.time, PlainValidator(_window_time), PlainSerializer(lambda time: f"{time:%H:%M}")]


class Window(PolicyModel):
    """A time-of-day window in a zone; it may wrap past midnight (20:00-08:00)."""

    start: WindowTime
    end: WindowTime
    timezone: Annotated[str, AfterValidator(_zone)] = "Europe/London"
    """An IANA time zone name."""

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        if self.start == self.end:
            yield Problem(("end",), f"a time other than start ({self.start:%H:%M}): the window would be empty",
                          f"{self.end:%H:%M}", BAD_WINDOW)


class Batch(PolicyModel):
    max_csrs: Annotated[int, Field(gt=0)] = 50000
    """More CSRs than this reject the whole batch (FM:AA2) [V]."""
    max_request_bytes: Annotated[int, Field(gt=0)] = 40_000_000
    """Larger batch requests are refused unread."""
    retention_days: Annotated[float, Field(gt=0)] = 30
    """Results are kept this long, then purged [V]."""
    processing_window: Window | None = None
    """When batches are processed; null: always."""


class AdHoc(PolicyModel):
    max_request_bytes: Annotated[int, Field(gt=0)] = 65536
    """Larger ad hoc requests are refused unread."""
    certificate_threshold: Annotated[int, Field(gt=0)] = 100
    """Fewer Device Certificates than this per Device ID [V]; the same as eligibility.yaml's limit."""


class SoftLimits(PolicyModel):
    """Per-Party soft limits of the real service [V]."""

    adhoc_min_interval_core_seconds: Annotated[float, Field(ge=0)] = 0.8
    """Ad hoc web service: one CSR per this many seconds in core hours."""
    adhoc_min_interval_other_seconds: Annotated[float, Field(ge=0)] = 4.0
    """... and per this many otherwise."""
    core_hours: Window = Window(start=dt.time(7), end=dt.time(20))
    """What core hours are; absent: 07:00-20:00 Europe/London."""
    portal_adhoc_per_24h: Annotated[int, Field(gt=0)] = 150
    """Ad hoc Device CSRs through the portal per 24 hours."""
    batched_csrs_per_24h: Annotated[int, Field(gt=0)] = 50000
    """Batched CSRs per 24 hours (more needs 7 days' notice)."""
    nightly_capacity_all_parties: Annotated[int, Field(gt=0)] = 375000
    """Batched CSRs a night across all subscribers."""
    min_poll_interval_seconds: Annotated[float, Field(ge=0)] = 3600
    """Batch results are not to be polled more often."""


class Processing(PolicyModel):
    chunk_size: Annotated[int, Field(gt=0)] = 500
    """CSRs per unit of work: one transaction, one queue job."""
    lease_seconds: Annotated[float, Field(gt=0)] = 120
    """A claimed chunk whose worker vanished is retried after this."""


class DeviceCsrLimits(PolicyModel):
    """``device_csr_limits.yaml``."""

    enforce: bool = False
    """false: exceeding a soft limit warns; true: it refuses with a WF: code."""
    batch: Batch = Batch()
    adhoc: AdHoc = AdHoc()
    limits: SoftLimits = SoftLimits()
    processing: Processing = Processing()

    def problems(self, context: PolicyContext) -> Iterator[Problem]:
        for loc, window in ((("batch", "processing_window"), self.batch.processing_window),
                            (("limits", "core_hours"), self.limits.core_hours)):
            if window is not None:
                yield from (Problem((*loc, *p.loc), p.expected, p.found, p.code) for p in window.problems(context))
        limit = context.names(MAX_CERTIFICATES)
        if limit and self.adhoc.certificate_threshold not in limit:
            yield Problem(("adhoc", "certificate_threshold"), f"{next(iter(limit))}, eligibility.yaml's device "
                          "max_certificates_per_device: both state the one SEC limit per Device ID",
                          self.adhoc.certificate_threshold)


class GateCredential(PolicyModel):
    party_id: Annotated[str, Field(min_length=1)]
    """The Party the credential acts for."""
    user_roles: Names = ()
    device_subscriber: bool = False
    """An Authorised Subscriber for Device Certificates."""
    for_manufacturer: bool = False
    """Submits for a manufacturer (the ManufacturingFlag)."""


class DeviceCsrGatePolicy(PolicyModel):
    """``device_csr_gate.yaml``: the stand-in gate's callers and installed devices (optional file)."""

    dcc_party: Annotated[str, Field(min_length=1)] = "DCC"
    """The Party ID that is the DCC."""
    credentials: dict[str, GateCredential] = Field(default_factory=dict)
    """System IKI credential name (X-SMKI-Client) -> the Party it acts for."""
    installed_devices: dict[DeviceId, str] = Field(default_factory=dict)
    """Device ID -> the responsible supplier's Party; devices not listed are pre-installation."""

    @field_validator("credentials", "installed_devices", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value  # "installed_devices:" with nothing after it

    @property
    def device_owners(self) -> dict[str, str]:
        return dict(self.installed_devices)
