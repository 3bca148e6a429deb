"""The ad hoc Device CSR web service: one CSR in, its certificate (or a coded refusal) out, at once.

Checks, in the specification's order after the caller is authenticated: schema (FORMAT_ERROR); CSR
format and signature (CSR_ERROR); the device already has a certificate (UNKNOWN_DEVICE); fewer than
100 certificates for the Device ID (ISSUANCE_ANOMALY); eligibility (INELIGIBLE); then signing
(CA_ERROR). Every call gets a TransactionId, the id of its row in ``device_csr_adhoc``, committed in
the same transaction as the certificate's ledger row.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from smki.devicecsr import pipeline, xml
from smki.devicecsr.batches import lodging_within
from smki.devicecsr.gate import ADHOC_ROLES, Refusal, Subscriber
from smki.devicecsr.limits import ADHOC
from smki.devicecsr.models import DeviceCsrTransaction
from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.models import CsrRejection

log = logging.getLogger("smki.devicecsr")
FM_SCHEMA = "FM:AH1"


def build() -> str:
    try:
        return f"smki-sandbox {version('smki-sandbox')}"
    except PackageNotFoundError:
        return "smki-sandbox"


@dataclass
class AdHocAnswer:
    body: bytes
    status: str
    warnings: list[str]


def answer(runtime: DeviceCsrRuntime, subscriber: Subscriber | Refusal, body: bytes) -> AdHocAnswer:
    """``subscriber`` is who the web edge and the gate found the caller to be, or why they are refused."""
    instance, policy = runtime.instance, runtime.policy
    received = dt.datetime.now(dt.UTC)
    within = lodging_within(runtime.on_issued)
    warnings: list[str] = []

    def reply(status: str, *, request_id: str | None = None, party: str | None = None, code: str | None = None,
              text: str | None = None, verdict: pipeline.Verdict | None = None,
              issuing: pipeline.Issuing | None = None, rejections: list | None = None) -> AdHocAnswer:
        with instance.database.session() as session:
            if issuing is not None and verdict is not None:
                # The ledger first: its per-device tally settles, against concurrent requests for the same
                # device, whether this certificate may still be issued (if not: ISSUANCE_ANOMALY).
                pipeline.record(runtime.batches.issuance, session, issuing)
                status, code, text = verdict.status, verdict.code, verdict.text
            serial = verdict.issued.serial if verdict and verdict.issued else None
            transaction_id = session.execute(insert(DeviceCsrTransaction).returning(DeviceCsrTransaction.id), [{
                "party_id": party, "request_id": request_id, "status": status, "error_code": code,
                "serial": serial, "received_at": received}]).scalar_one()
            if verdict is not None and verdict.csr is not None:
                # the RA's record of the decision, in the transaction that commits the ledger row
                runtime.gate.record(session, subscriber, pipeline.settled([verdict]),  # type: ignore[arg-type]
                                    channel="adhoc", reference=f"adhoc:{transaction_id}")
            if rejections:
                session.execute(insert(CsrRejection), rejections)
            if within is not None and verdict is not None and verdict.issued is not None:
                within.within(session, [(verdict.issued, verdict.manufacturing_flag)])  # lodged in this transaction
        certificate = base64.b64encode(verdict.issued.der).decode() if verdict and verdict.issued else None
        out = xml.adhoc_response(request_id=request_id, build=build(), transaction_id=transaction_id,
                                 status=status, certificate_b64=certificate, code=code, text=text)
        return AdHocAnswer(out, status, warnings)

    if isinstance(subscriber, Refusal):
        return reply(pipeline.WORKFLOW_ERROR, code=subscriber.code, text=subscriber.text)
    party = subscriber.party_id
    if not (subscriber.user_roles & ADHOC_ROLES or party == getattr(runtime.gate, "dcc_party", "DCC")):
        return reply(pipeline.WORKFLOW_ERROR, party=party, code="WF:ROLE1", text=(
            "the ad hoc Device CSR web service is only for Import Suppliers, Gas Suppliers and the DCC; use "
            "the batched service."))
    findings = runtime.limits.check(party, ADHOC, now=received)
    warnings.extend(f"{f.code} {f.text}" for f in findings)
    refusal = runtime.limits.refuses(findings)
    if refusal:
        return reply(pipeline.WORKFLOW_ERROR, party=party, code=refusal.code, text=refusal.text)
    try:
        root = xml.parse(body, max_bytes=policy.max_adhoc_bytes, root="DeviceCertificateSigningRequest",
                         code=FM_SCHEMA)
        xml.validate(root, FM_SCHEMA)
    except xml.XmlRejected as rejected:
        return reply(pipeline.FORMAT_ERROR, party=party, code=rejected.code, text=rejected.text)
    request_id = root.get("ID")
    raw = root.findtext(xml.tag("CertificateSigningRequest")) or ""
    verdict = pipeline.assess(instance, runtime.gate, subscriber, [raw], channel="adhoc",
                              threshold=policy.certificate_threshold, require_known_device=True)[0]
    if verdict.status != pipeline.SUCCESS:
        rejections = pipeline.rejection_rows([verdict], channel="adhoc", requested_by=subscriber.requested_by)
        return reply(verdict.status, request_id=request_id, party=party, code=verdict.code, text=verdict.text,
                     verdict=verdict, rejections=rejections)
    try:
        issuing = pipeline.sign(runtime.batches.issuance, [verdict], channel="adhoc",
                                requested_by=subscriber.requested_by)
        result = reply(verdict.status, request_id=request_id, party=party, verdict=verdict, issuing=issuing)
    except SQLAlchemyError:
        log.exception("ad hoc Device CSR: the ledger could not be written")
        verdict.issued = None
        return reply(pipeline.CA_ERROR, request_id=request_id, party=party, code="CA:E501", text=(
            "the certificate could not be recorded, so none was issued; retry the request."))
    if runtime.on_issued is not None and within is None and verdict.issued is not None:
        runtime.on_issued([(verdict.issued, verdict.manufacturing_flag)])
    return result
