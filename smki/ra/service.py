"""The Registration Authority's CSR path and certificate lifecycle, one entry point per action.

authenticated ARO -> scope check -> CSR validation -> eligibility -> CA signs -> ONE unit of work:
(decision, audit records, ledger row, Repository lodging) -> returned.

Every decision takes effect whole or not at all. A CSR is decided twice on the same rules: first on a
plain read, so that the CA signs only what the rules allow (signing and linting are the slow part, done
outside any lock); then again inside the unit of work that holds the audit chain's writer lock
(:func:`smki.ra.audit.audited`), with the caller's credential read afresh. That second decision is the one
recorded, and in the same transaction, if it allows: its ``csr.approved`` audit record, the ledger row
(:meth:`IssuanceService.record`), the ``certificate.issued`` audit record, the Repository's record and the
decision row (``released``, with its serial). All of it commits together or none of it does: no
certificate is ever in the ledger without its audit records, nor released without being lodged, and a
certificate signed for a request refused meanwhile (or whose ARO was withdrawn meanwhile) is discarded
unrecorded: no one has seen it. ``smki audit verify`` still reconciles the ledger against the decisions
(:func:`unreleased_serials`) for what earlier versions, which committed in three steps, may have left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smki.core.errors import CsrRejected, IssuanceFailed, SmkiError
from smki.csr import ValidatedCsr
from smki.instance import Instance
from smki.issuance import SERIAL_ATTEMPTS, IssuanceService, IssuedCertificate, NotIssued, Signed
from smki.models import IssuanceRecord
from smki.ra import audit
from smki.ra.eligibility import (
    Decision,
    evaluate_device_csr,
    evaluate_organisation_csr,
    record_decision,
    record_rejection,
)
from smki.ra.identity import (
    Appointed,
    NotAuthorised,
    Principal,
    authenticate_certificate,
    authenticate_token,
    current_principal,
    require_acts_for,
    require_aro,
)
from smki.ra.lodging import CertificateLodge, RepositoryAccess, lodge_for
from smki.ra.models import CsrDecision, Organisation
from smki.ra.settings import RaSettings, load_ra_settings
from smki.ra.unit_of_work import WithinUnitOfWork

RA_CHANNELS = ("api", "portal", "adhoc", "batch")
# How a CSR is decided: (session, the caller, the caller's ARO appointment) -> the decision. Read only.
Evaluation = Callable[[Session, Principal, Appointed], Decision]
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
            audit.audited(self.database, partial(record_rejection, principal=principal, raw=raw, kind=kind,
                                                 channel=channel, code=rejection.code, message=rejection.message))
            raise

    def _decide(self, principal: Principal, csr: ValidatedCsr, channel: str, evaluate) -> Decision:
        def work(session: Session) -> Decision:
            return record_decision(session, evaluate(session), csr, principal, channel=channel)
        return audit.audited(self.database, work)

    def submit_organisation_csr(self, principal: Principal, raw: bytes | str, *, channel: str = "api") -> Release:
        require_aro(principal, "organisation")
        csr = self._validate(principal, raw, "organisation", channel)
        rules = self.settings.eligibility
        return self._issue(principal, csr, "organisation", channel, "IN:ORG04",
                           lambda session, _caller, aro: evaluate_organisation_csr(session, rules, aro, csr))

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
        rules = self.settings.eligibility
        return self._issue(principal, csr, "device", channel, "IN:DEV01",
                           lambda session, caller, aro: evaluate_device_csr(
                               session, rules, caller, aro, csr, subscriber_id=subscriber_id,
                               manufacturer_id=manufacturer_id, ad_hoc=ad_hoc))

    def _issue(self, principal: Principal, csr: ValidatedCsr, policy: str, channel: str, refused_code: str,
               evaluate: Evaluation) -> Release:
        """Decide, sign, and record the decision with the certificate in one unit of work (see the module's
        docstring); raises Ineligible for a refusal (recorded), the CA's refusal (recorded with the
        approval), or NotAuthenticated/NotAuthorised (nothing recorded) if the caller lost the right."""
        for _attempt in range(SERIAL_ATTEMPTS):
            # One read for the first decision and the issuer's revocation status the CA checks before signing.
            with self.database.session() as session:
                foreseen = evaluate(session, principal, require_aro(principal, policy))
                signed = self.issuance.sign([csr], channel=channel, requested_by=principal.label,
                                            connection=session.connection()) if foreseen.allowed else None
            try:
                settled = audit.audited(self.database, partial(
                    self._settle, principal=principal, csr=csr, policy=policy, channel=channel, foreseen=foreseen,
                    signed=signed, evaluate=evaluate))
            except IntegrityError:
                # A serial already in the ledger or the Repository (random serials: astronomically rare).
                # The unit rolled back whole; sign again with a fresh serial.
                continue
            if isinstance(settled, Release):
                return settled
            if isinstance(settled, SmkiError):
                raise settled
            raise Ineligible(settled.code or refused_code, settled.message)
        raise IssuanceFailed("CA:E206", "the issuance ledger refused the certificate; nothing was issued. Retry, "
                             "and report it if it persists.")

    def _settle(self, session: Session, principal: Principal, csr: ValidatedCsr, policy: str, channel: str,
                foreseen: Decision, signed: Signed | None, evaluate: Evaluation) -> Release | Decision | SmkiError:
        """The unit of work of one CSR, under the audit chain's lock: the decision as it stands now, and
        with it, if it allows, the certificate recorded, audited, lodged and released."""
        caller = current_principal(session, principal.credential_id)
        decision = evaluate(session, caller, require_aro(caller, policy))
        if not decision.allowed or signed is None:
            # refused now, or refused on the first reading (nothing was signed): the refusal is recorded
            return record_decision(session, decision if not decision.allowed else foreseen, csr, caller,
                                   channel=channel)
        [outcome] = signed.outcomes
        if isinstance(outcome, IssuedCertificate):
            [outcome] = self.issuance.record(session, signed)  # a Device ID at its limit is refused here
        label = caller.label
        if isinstance(outcome, NotIssued):
            record_decision(session, decision, csr, caller, channel=channel, also=lambda decision_id: [
                audit.Entry(label, "issuance.failed", detail={"code": outcome.code, "decisions": [decision_id]})])
            return outcome.error
        certificate = outcome
        released = record_decision(
            session, decision, csr, caller, channel=channel, status="released", serial=certificate.serial,
            also=lambda decision_id: [audit.Entry(
                label, "certificate.issued", f"{decision.kind}:{decision.subject_id}",
                {"serial": certificate.serial, "profile": certificate.profile, "decision": decision_id,
                 "rule": decision.rule, "subscriber": decision.subscriber_organisation_id,
                 "manufacturing_flag": decision.manufacturing_flag, "channel": channel})])
        self.lodge.lodge_issued(session, [(certificate, decision.manufacturing_flag)], lodged_by=label)
        return Release(released, certificate, self.lodge.available)

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
