"""The Registration Authority's CSR path and certificate lifecycle, one entry point per action.

authenticated ARO -> scope check -> CSR validation -> eligibility (recorded, audited) -> CA (ledger) ->
audit of the issuance -> lodged in the Repository -> returned.

Audit before effect, failing closed. The ledger commit happens inside :class:`IssuanceService` in its own
transaction, so the RA cannot put the ledger row and its audit record in one transaction. The order is:

1. the approval decision and its audit record commit together *before* the CA is asked to sign; if that
   audit write fails, nothing is signed;
2. the CA signs and the ledger row commits (the CA's own record of what it signed);
3. the ``certificate.issued`` audit record (serial, TBS hash, Subscriber of record) commits, and only then
   is the certificate lodged in the Repository and returned. If this audit write fails the certificate is
   never lodged nor returned: it exists only as a ledger row, which ``smki audit verify`` reports as
   "signed but never released" by reconciling the ledger against the audit records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smki.core.errors import CsrRejected, SmkiError
from smki.csr import ValidatedCsr
from smki.instance import Instance
from smki.issuance import IssuanceService, IssuedCertificate
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.eligibility import Decision, evaluate_device_csr, evaluate_organisation_csr, record_decision
from smki.ra.identity import (
    NotAuthorised,
    Principal,
    authenticate_certificate,
    authenticate_token,
    require_acts_for,
    require_aro,
)
from smki.ra.lodging import CertificateLodge, RepositoryAccess, lodge_for
from smki.ra.models import CsrDecision, Organisation
from smki.ra.settings import RaSettings, load_ra_settings
from smki.ra.unit_of_work import WithinUnitOfWork

RA_CHANNELS = ("api", "portal", "adhoc", "batch")
NOT_FOUND = "WF:CRT01"
NOT_RELEASED = "WF:CRT02"
NOT_REJECTABLE = "WF:CRT03"


class Ineligible(SmkiError):
    """The CSR was decided against; the decision (and its rule) is recorded."""


@dataclass(frozen=True)
class Release:
    """A certificate the RA issued, lodged and handed back, with the decision that allowed it."""

    decision: Decision
    certificate: IssuedCertificate
    lodged: bool

    @property
    def serial(self) -> str:
        return self.certificate.serial


class RegistrationAuthority:
    def __init__(self, instance: Instance, lodge: CertificateLodge | None = None) -> None:
        self.instance = instance
        self.database = instance.database
        self._lodge = lodge

    @cached_property
    def settings(self) -> RaSettings:
        return load_ra_settings(self.instance.settings.policies_dir)

    @cached_property
    def issuance(self) -> IssuanceService:
        return IssuanceService(self.instance.ca, self.database, self.instance.policies)

    @cached_property
    def lodge(self) -> CertificateLodge:
        return self._lodge or lodge_for(self.database)

    @cached_property
    def repository_access(self) -> RepositoryAccess:
        return RepositoryAccess(self.database)

    def lodge_within(self, session: Session) -> CertificateLodge:
        """The Repository's lodging and revocation, written in ``session``'s unit of work (see
        :mod:`smki.ra.unit_of_work`); a lodge given to the RA (a test's) is used as it is."""
        return self._lodge or lodge_for(WithinUnitOfWork(session))

    # --- authentication ----------------------------------------------------------------------------------

    def authenticate_token(self, token: str | None) -> Principal:
        with self.database.session() as session:
            return authenticate_token(session, token)

    def authenticate_certificate(self, certificate_pem_or_der: bytes) -> Principal:
        from smki.ra.iki import IkiAuthority, load_certificate
        with self.database.session() as session:
            return authenticate_certificate(session, load_certificate(certificate_pem_or_der),
                                            IkiAuthority(self.instance, self.settings).certificate)

    # --- the CSR path ------------------------------------------------------------------------------------

    def _validate(self, principal: Principal, raw: bytes | str, kind: str, channel: str) -> ValidatedCsr:
        try:
            return self.issuance.validate(raw, channel=channel, requested_by=principal.label,
                                          expected=kind)  # type: ignore[arg-type]
        except CsrRejected as rejection:
            audit.record(self.database, actor=principal.label, action="csr.rejected", subject=kind,
                         detail={"code": rejection.code, "channel": channel})
            raise

    def _decide(self, principal: Principal, csr: ValidatedCsr, channel: str, evaluate) -> Decision:
        def work(session: Session) -> Decision:
            return record_decision(session, evaluate(session), csr, principal, channel=channel)
        return audit.audited(self.database, work)

    def submit_organisation_csr(self, principal: Principal, raw: bytes | str, *, channel: str = "api") -> Release:
        aro = require_aro(principal, "organisation")
        csr = self._validate(principal, raw, "organisation", channel)
        decision = self._decide(principal, csr, channel,
                                lambda session: evaluate_organisation_csr(session, self.settings.eligibility, aro, csr))
        if not decision.allowed:
            raise Ineligible(decision.code or "IN:ORG04", decision.message)
        return self.release(principal, [(decision, csr)], channel=channel)[0]

    def decide_device_csr(self, principal: Principal, csr: ValidatedCsr, *, channel: str,
                          subscriber_id: int | None = None, manufacturer_id: int | None = None,
                          ad_hoc: bool = False, pending_for_device: int = 0) -> Decision:
        """Decide one validated Device CSR and record the decision (with its audit record). Returns the
        decision whether allowed or refused; never raises for an ineligible request. Raises NotAuthorised
        (AZ:) when the caller is not an ARO scoped to Device Certificates."""
        aro = require_aro(principal, "device")
        return self._decide(principal, csr, channel, lambda session: evaluate_device_csr(
            session, self.settings.eligibility, principal, aro, csr, subscriber_id=subscriber_id,
            manufacturer_id=manufacturer_id, ad_hoc=ad_hoc, pending_for_device=pending_for_device))

    def submit_device_csr(self, principal: Principal, raw: bytes | str, *, channel: str = "api",
                          subscriber_id: int | None = None, manufacturer_id: int | None = None,
                          ad_hoc: bool = False) -> Release:
        require_aro(principal, "device")
        csr = self._validate(principal, raw, "device", channel)
        decision = self.decide_device_csr(principal, csr, channel=channel, subscriber_id=subscriber_id,
                                          manufacturer_id=manufacturer_id, ad_hoc=ad_hoc)
        if not decision.allowed:
            raise Ineligible(decision.code or "IN:DEV01", decision.message)
        return self.release(principal, [(decision, csr)], channel=channel)[0]

    def release(self, principal: Principal | None, approved: Sequence[tuple[Decision, ValidatedCsr]], *,
                channel: str) -> list[Release]:
        """Issue, audit, lodge and return the certificates for decisions already approved and recorded.
        All in one unit: the ledger rows commit together, then their audit records together."""
        if not approved:
            return []
        if any(not decision.allowed or decision.decision_id is None for decision, _ in approved):
            raise SmkiError("WF:CSR01", "only recorded, allowed decisions can be released.")
        label = principal.label if principal else "system"
        try:
            issued = self.issuance.issue_many([csr for _, csr in approved], channel=channel, requested_by=label)
        except SmkiError as failure:
            audit.record(self.database, actor=label, action="issuance.failed", detail={
                "code": failure.code, "decisions": [d.decision_id for d, _ in approved]})
            raise

        def work(session: Session) -> None:
            for (decision, _), certificate in zip(approved, issued, strict=True):
                audit.append(session, actor=label, action="certificate.issued",
                             subject=f"{decision.kind}:{decision.subject_id}",
                             detail={"serial": certificate.serial, "profile": certificate.profile,
                                     "decision": decision.decision_id, "rule": decision.rule,
                                     "subscriber": decision.subscriber_organisation_id,
                                     "manufacturing_flag": decision.manufacturing_flag, "channel": channel})
                row = session.get(CsrDecision, decision.decision_id)
                assert row is not None
                row.status, row.serial = "issued", certificate.serial

        audit.audited(self.database, work)  # raises CA:AUD01 and releases nothing if it cannot be written
        releases = []
        for (decision, _), certificate in zip(approved, issued, strict=True):
            self.lodge.lodge(certificate.der, manufacturing_flag=decision.manufacturing_flag, lodged_by=label)
            releases.append(Release(decision, certificate, self.lodge.available))
        # One statement that writes without reading first: on SQLite a unit that reads and then writes
        # is refused outright if another connection committed in between.
        with self.database.session() as session:
            session.execute(update(CsrDecision).where(CsrDecision.id.in_(
                [release.decision.decision_id for release in releases])).values(status="released"))
        return releases

    # --- certificates after issue ------------------------------------------------------------------------

    def _issued_to(self, session: Session, principal: Principal, serial: str) -> tuple[CsrDecision, bytes]:
        serial = serial.strip().upper()
        row = session.execute(select(CsrDecision).where(CsrDecision.serial == serial)).scalar_one_or_none()
        if row is None:
            raise SmkiError(NOT_FOUND, f"no certificate with serial {serial} was issued through the RA.")
        aro = require_aro(principal, row.kind)
        subscriber = session.get(Organisation, row.subscriber_organisation_id)
        require_acts_for(aro, row.subscriber_organisation_id or -1, subscriber.name if subscriber else None)
        ledger = session.execute(select(IssuanceRecord).where(IssuanceRecord.serial == serial)).scalar_one()
        return row, ledger.certificate_der

    def certificate(self, principal: Principal, serial: str) -> tuple[bytes, CsrDecision]:
        """The DER of a certificate issued to a Subscriber the ARO acts for."""
        with self.database.session() as session:
            row, der = self._issued_to(session, principal, serial)
            if row.status not in ("released", "rejected_by_subscriber", "revoked"):
                raise SmkiError(NOT_RELEASED, f"certificate {serial} was signed but not released ({row.status}); "
                                "the RA service desk can investigate.")
            return der, row

    def reject_certificate(self, principal: Principal, serial: str, reason: str) -> CsrDecision:
        """The Subscriber rejects a certificate that does not match its CSR: it is revoked at once."""
        with self.database.session() as session:
            row, _ = self._issued_to(session, principal, serial)
            if row.kind != "organisation":
                raise SmkiError(NOT_REJECTABLE, "Device Certificates are not revoked through a CRL; only an "
                                "Organisation Certificate can be rejected on receipt.")
            if row.status != "released":
                raise SmkiError(NOT_REJECTABLE, f"certificate {row.serial} is {row.status.replace('_', ' ')}.")
            serial = row.serial or serial

        def work(session: Session) -> CsrDecision:
            decision = session.execute(select(CsrDecision).where(CsrDecision.serial == serial)).scalar_one()
            if decision.status != "released":  # decided by another request since the check above
                raise SmkiError(NOT_REJECTABLE, f"certificate {serial} is {decision.status.replace('_', ' ')}.")
            audit.append(session, actor=principal.label, action="certificate.rejected_on_receipt",
                         subject=f"organisation:{serial}", detail={"reason": reason})
            decision.status = "rejected_by_subscriber"
            # revoked in the Repository in the same unit: the rejection and the revocation stand or fall together
            self.lodge_within(session).revoke(serial, reason=self.settings.revocation_reasons["rejected_on_receipt"],
                                              at=dt.datetime.now(dt.UTC), requested_by=principal.label)
            return decision

        return audit.audited(self.database, work)

    def revoke(self, actor: str, serial: str, reason: str, session: Session) -> None:
        """Revoke on an approved Certificate Revocation Request (the audit record is the caller's)."""
        decision = session.execute(select(CsrDecision).where(CsrDecision.serial == serial)).scalar_one_or_none()
        if decision is not None:
            decision.status = "revoked"

    def decisions(self, principal: Principal, organisation_id: int, policy: str = "organisation") -> list[CsrDecision]:
        """The CSR decisions for a Subscriber the ARO acts for, under one Certificate Policy."""
        aro = require_aro(principal, policy)
        require_acts_for(aro, organisation_id)
        with self.database.session() as session:
            return list(session.execute(select(CsrDecision).where(
                CsrDecision.subscriber_organisation_id == organisation_id, CsrDecision.kind == policy)
                .order_by(CsrDecision.id.desc()).limit(500)).scalars())


def unreleased_serials(instance: Instance) -> list[str]:
    """Ledger rows signed on an RA channel with no ``certificate.issued`` audit record: signed but never
    released (the audit write after signing failed)."""
    with instance.database.session() as session:
        signed = set(session.execute(select(IssuanceRecord.serial).where(
            IssuanceRecord.channel.in_(RA_CHANNELS))).scalars())
        audited_serials = {row.serial for row in session.execute(select(CsrDecision).where(
            CsrDecision.serial.is_not(None))).scalars()}
        # a decision's serial is set only in the transaction that writes its certificate.issued record
    return sorted(signed - audited_serials)


__all__ = ["Ineligible", "NotAuthorised", "RegistrationAuthority", "Release", "unreleased_serials"]
