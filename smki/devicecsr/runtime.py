"""Wires the Device CSR services for one instance: policy, gate, job queue, batch service, hook.

The web app and ``smki worker`` both build one. The gate and the ``on_issued`` hook are injectable:
the RA's gate and the Repository's lodging hook plug in here without changing this package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from smki.devicecsr.batches import BatchService, OnIssued
from smki.devicecsr.gate import DeviceCsrGate, load_gate
from smki.devicecsr.jobs import DeviceCsrJobs, build_huey, queue_url
from smki.devicecsr.limits import LimitCounter
from smki.devicecsr.policy import DeviceCsrPolicy, load_device_csr_policy
from smki.instance import Instance


def lodge_in_repository(instance: Instance) -> OnIssued:
    """The default hook: lodge each chunk's certificates in the Repository, with their ManufacturingFlag,
    through the RA (the RA is what lodges into the Repository), inside the chunk's own transaction (its
    ``within``), from what the issuance path already knows of them."""
    from smki.ra.lodging import issued_lodging

    return issued_lodging(instance.database, "device-csr-service")


def load_on_issued(instance: Instance) -> OnIssued:
    """``SMKI_DEVICECSR_ON_ISSUED=module:callable`` replaces :func:`lodge_in_repository`: called with each
    committed list of (certificate, ManufacturingFlag)."""
    target = instance.settings.devicecsr_on_issued
    if not target:
        return lodge_in_repository(instance)
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class DeviceCsrRuntime:
    instance: Instance
    policy: DeviceCsrPolicy
    gate: DeviceCsrGate
    jobs: DeviceCsrJobs
    limits: LimitCounter
    on_issued: OnIssued | None

    @property
    def batches(self) -> BatchService:
        return self.jobs.service

    @classmethod
    def build(cls, instance: Instance, *, gate: DeviceCsrGate | None = None, on_issued: OnIssued | None = None,
              queue: str | None = None, policy: DeviceCsrPolicy | None = None) -> DeviceCsrRuntime:
        policy = policy or load_device_csr_policy(instance.settings.policies_dir)
        chosen_gate = gate if gate is not None else load_gate(instance)
        hook = on_issued if on_issued is not None else load_on_issued(instance)
        huey = build_huey(queue or queue_url(instance))
        jobs = DeviceCsrJobs(huey, lambda scheduler: BatchService(instance, chosen_gate, policy, scheduler, hook))
        return cls(instance, policy, chosen_gate, jobs, LimitCounter(instance.database, policy), hook)
