"""Decides Device CSRs in the specification's order of checks, then submits the approved ones to the one
issuance path (:class:`smki.issuance.IssuanceService`), without committing anything.

Order (SEC Appendix M): CSR format and signature (CSR_ERROR); for the ad hoc service, the device
already has a DS or KA certificate (UNKNOWN_DEVICE); fewer than the threshold of certificates for the
Device ID (ISSUANCE_ANOMALY, needs manual RA action); eligibility (INELIGIBLE); then issuance
(CA_ERROR when the CA fails: a retry may work; ISSUANCE_ANOMALY when, by the time the ledger records it,
concurrent requests have taken the Device ID to the threshold). :func:`sign` runs outside any
transaction; :func:`record` runs in the caller's, which also commits the decisions and the outcomes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from smki.core.errors import CsrRejected
from smki.csr import ValidatedCsr, received_digest, validate
from smki.devicecsr.gate import DeviceCsrGate, Settled, Subscriber
from smki.instance import Instance
from smki.issuance import DEVICE_LIMIT, IssuanceService, IssuedCertificate, Outcome, Signed

SUCCESS = "SUCCESS"
UNKNOWN_DEVICE = "UNKNOWN_DEVICE"
INELIGIBLE = "INELIGIBLE"
ISSUANCE_ANOMALY = "ISSUANCE_ANOMALY"
CSR_ERROR = "CSR_ERROR"
CA_ERROR = "CA_ERROR"
FORMAT_ERROR = "FORMAT_ERROR"
WORKFLOW_ERROR = "WORKFLOW_ERROR"

UD_UNKNOWN = "UD:DEV1"
CA_THRESHOLD = DEVICE_LIMIT  # CA:ANOM1
WF_DUPLICATE = "WF:DUP1"


@dataclass
class Verdict:
    """The fate of one CSR. ``csr`` is set when it decoded; ``issued`` when it was signed."""

    status: str
    code: str | None = None
    text: str | None = None
    csr: ValidatedCsr | None = None
    manufacturing_flag: bool = False
    issued: IssuedCertificate | None = None
    raw_sha256: str | None = None    # of the bytes received, for the CA's record of rejections
    rule: str = ""                   # the check or eligibility rule that settled it, for the RA's record

    @property
    def device_id(self) -> str | None:
        return self.csr.device_id.hex if self.csr and self.csr.device_id else None


def csr_error_code(code: str) -> str:
    """CSR validation's FM:CSRnn (undecodable) is, in these services, a CSR_ERROR: family CR."""
    return "CR:" + code.split(":", 1)[1] if code.startswith("FM:") else code


def assess(instance: Instance, gate: DeviceCsrGate, subscriber: Subscriber, raws: Sequence[str | bytes | None],
           *, channel: str, threshold: int, require_known_device: bool) -> list[Verdict]:
    """Run the checks for each CSR (``None`` marks one already decided by the caller)."""
    verdicts: list[Verdict] = []
    for raw in raws:
        if raw is None:
            verdicts.append(Verdict(WORKFLOW_ERROR))
            continue
        try:
            csr = validate(raw, instance.policies, "device")
        except CsrRejected as rejection:
            verdicts.append(Verdict(CSR_ERROR, csr_error_code(rejection.code), rejection.message,
                                    raw_sha256=received_digest(raw)))
            continue
        verdicts.append(Verdict(SUCCESS, csr=csr))
    candidates = [v for v in verdicts if v.status == SUCCESS]
    counts = dict(gate.device_certificate_counts([v.device_id for v in candidates if v.device_id]))
    eligible: list[Verdict] = []
    for verdict in candidates:
        device = verdict.device_id or ""
        have = counts.get(device, 0)
        if require_known_device and not gate.known_device(device):
            verdict.status, verdict.code, verdict.rule = UNKNOWN_DEVICE, UD_UNKNOWN, "device.ad-hoc-replacement"
            verdict.text = (f"device {device} has no Device Certificate yet; the ad hoc service only replaces "
                            "a certificate of a known device. Use the batched service for a new device.")
            continue
        # "Fewer than 100 Device Certificates may exist per Device ID": this one would be number have + 1.
        if have + 1 >= threshold:
            verdict.status, verdict.code, verdict.rule = ISSUANCE_ANOMALY, CA_THRESHOLD, "device.certificate-limit"
            verdict.text = (f"device {device} already has {have} Device Certificates; fewer than {threshold} may "
                            "exist. The service desk must raise the threshold before more are issued.")
            continue
        counts[device] = have + 1  # a later CSR of the same chunk counts this one
        eligible.append(verdict)
    # Eligibility last, as the specification orders it, for the whole chunk at once.
    decisions = gate.decide_many(subscriber, [v.csr for v in eligible if v.csr is not None], channel)
    for verdict, decision in zip(eligible, decisions, strict=True):
        verdict.manufacturing_flag, verdict.rule = decision.manufacturing_flag, decision.rule
        if not decision.allowed:
            verdict.status, verdict.code = decision.status, decision.code
            verdict.text = decision.message or f"not eligible: {decision.rule}."
    return verdicts


def settled(verdicts: Sequence[Verdict]) -> list[Settled]:
    """What the gate records: every CSR that decoded, with the rule that settled it and any serial."""
    return [Settled(v.csr, v.status, v.code, v.rule or ("csr.duplicate" if v.code == WF_DUPLICATE else "issued"),
                    v.text or "", v.manufacturing_flag, v.issued.serial if v.issued else None)
            for v in verdicts if v.csr is not None]


@dataclass(frozen=True)
class Issuing:
    """The approved verdicts of one unit and what the issuance path signed for them, not yet recorded."""

    verdicts: list[Verdict]
    signed: Signed


def sign(issuance: IssuanceService, verdicts: Sequence[Verdict], *, channel: str, requested_by: str) -> Issuing:
    """Have the issuance path sign every SUCCESS verdict (outside any transaction: signing is the slow
    part). A refusal by the CA marks that CSR CA_ERROR and the rest go on."""
    approved = [v for v in verdicts if v.status == SUCCESS and v.csr is not None]
    signed = issuance.sign([v.csr for v in approved if v.csr is not None], channel=channel,
                           requested_by=requested_by)
    _settle(approved, signed.outcomes)
    return Issuing(approved, signed)


def record(issuance: IssuanceService, connection: Connection | Session, issuing: Issuing) -> None:
    """Record the signed certificates in the caller's transaction; a CSR whose Device ID reached the
    threshold meanwhile becomes ISSUANCE_ANOMALY, and nothing of it is recorded."""
    _settle(issuing.verdicts, issuance.record(connection, issuing.signed))


def _settle(verdicts: Sequence[Verdict], outcomes: Sequence[Outcome]) -> None:
    for verdict, outcome in zip(verdicts, outcomes, strict=True):
        if isinstance(outcome, IssuedCertificate):
            verdict.issued = outcome
            continue
        verdict.issued = None
        if outcome.code == DEVICE_LIMIT:
            verdict.status, verdict.code, verdict.rule = ISSUANCE_ANOMALY, CA_THRESHOLD, "device.certificate-limit"
            verdict.text = outcome.message
        else:
            verdict.status = CA_ERROR
            verdict.code = outcome.code if outcome.code.startswith("CA:") else "CA:E500"
            verdict.text = f"the CA did not issue: {outcome.message}"


def rejection_rows(verdicts: Sequence[Verdict], *, channel: str, requested_by: str) -> list[dict[str, Any]]:
    """The CA's record of CSRs refused as CSRs (csr_rejection), written with the outcomes."""
    now = dt.datetime.now(dt.UTC)
    return [{"received_at": now, "channel": channel, "requested_by": requested_by, "csr_sha256": v.raw_sha256,
             "code": v.code, "message": v.text} for v in verdicts if v.status == CSR_ERROR and v.raw_sha256]
