"""The RA behind the Device CSR services: its credentials, its eligibility rules, its records.

The web edge authenticates callers as they are authenticated everywhere else in the sandbox (an API token
in ``Authorization: Bearer`` or the IKI client certificate over mutual TLS for the web services, the
portal's sign-in for the upload page) and hands the gate the RA's :class:`~smki.ra.identity.Principal` in
a :class:`~smki.devicecsr.gate.Caller`. Callers must be AROs scoped to Device Certificates. The Subscriber
of record is the ARO's own Party, or the Authorised Subscriber named by the ``Subscriber`` parameter (an
organisation id the ARO acts for); ``Manufacturer`` names the manufacturer a supplier submits for, which
sets the ManufacturingFlag.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from smki.core.bounded import parse_query_int
from smki.core.errors import SmkiError
from smki.csr import ValidatedCsr
from smki.devicecsr.gate import (
    WF_NOT_AUTHENTICATED,
    WF_NOT_AUTHORISED,
    Caller,
    Decision,
    LedgerGate,
    Refusal,
    Settled,
    Subscriber,
)
from smki.instance import Instance
from smki.ra.device_decisions import (
    DeviceOutcome,
    decide_device_csrs,
    principal_of_credential,
    record_device_decisions,
)
from smki.ra.eligibility import is_authorised_subscriber
from smki.ra.identity import principal_for, require_aro
from smki.ra.models import Credential, Organisation, UserIdentifier
from smki.ra.service import RegistrationAuthority

# The Appendix M Status for each family of the RA's refusal codes.
STATUS_BY_FAMILY = {"IN": "INELIGIBLE", "UD": "UNKNOWN_DEVICE", "WF": "WORKFLOW_ERROR", "CA": "ISSUANCE_ANOMALY"}
WF_WITHDRAWN = "WF:AUTH3"
WF_BAD_PARAMETER = "WF:AUTH4"


def _organisation_parameter(value: str | None, name: str) -> int | None:
    """An organisation id from the query (ids are INTEGER columns: a larger one would overflow PostgreSQL's)."""
    return parse_query_int(value, field=name, code=WF_BAD_PARAMETER)


class RaGate:
    dcc_party = ""  # the DCC is recognised by its User Role "DCC", not by a name

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.ra = RegistrationAuthority(instance)
        self._ledger = LedgerGate(instance.database)

    # --- who is calling ---------------------------------------------------------------------------------

    def authenticate(self, caller: Caller) -> Subscriber | Refusal:
        principal = caller.principal
        if principal is None:
            return Refusal(WF_NOT_AUTHENTICATED, "no credentials were presented: send 'Authorization: Bearer <API "
                           "token>', connect with your IKI client certificate, or sign in to the portal.")
        try:
            aro = require_aro(principal, "device")
        except SmkiError as error:
            return Refusal(WF_NOT_AUTHORISED, f"{error.message} ({error.code})")
        try:
            subscriber_id = _organisation_parameter(caller.subscriber, "Subscriber") or principal.organisation_id
            manufacturer_id = _organisation_parameter(caller.manufacturer, "Manufacturer")
        except SmkiError as error:
            return Refusal(error.code, error.message)
        if subscriber_id is None or subscriber_id not in aro.acts_for:
            return Refusal(WF_NOT_AUTHORISED, "you are not an ARO of the Authorised Subscriber named; name one you "
                           "act for in the Subscriber parameter.")
        with self.instance.database.session() as session:
            organisation = session.get(Organisation, subscriber_id)
            roles = set(session.execute(select(UserIdentifier.user_role).where(
                UserIdentifier.organisation_id == subscriber_id)).scalars())
            if organisation is not None and organisation.category == "dcc":
                roles.add("DCC")
            authorised = is_authorised_subscriber(session, subscriber_id, "device")
        return Subscriber(str(subscriber_id), frozenset(roles), authorised, principal.label,
                          manufacturer_id is not None, str(principal.credential_id),
                          str(manufacturer_id) if manufacturer_id is not None else None)

    # --- what the ledger says -----------------------------------------------------------------------------

    def known_device(self, device_id: str) -> bool:
        return self._ledger.known_device(device_id)

    def device_certificate_count(self, device_id: str) -> int:
        return self._ledger.device_certificate_count(device_id)

    def device_certificate_counts(self, device_ids: Collection[str]) -> Mapping[str, int]:
        return self._ledger.device_certificate_counts(device_ids)

    # --- eligibility and its record ---------------------------------------------------------------------

    def decide(self, subscriber: Subscriber, csr: ValidatedCsr, channel: str) -> Decision:
        return self.decide_many(subscriber, [csr], channel)[0]

    def decide_many(self, subscriber: Subscriber, csrs: Sequence[ValidatedCsr], channel: str) -> list[Decision]:
        if not csrs:
            return []
        with self.instance.database.session() as session:
            try:
                principal = principal_of_credential(session, int(subscriber.credential or 0))
                decisions = decide_device_csrs(
                    session, self.ra.settings.eligibility, principal, csrs, subscriber_id=int(subscriber.party_id),
                    manufacturer_id=int(subscriber.manufacturer) if subscriber.manufacturer else None,
                    ad_hoc=channel == "adhoc")
            except SmkiError as error:
                # The submitter's credentials were withdrawn (or their Device scope removed) after the
                # batch was accepted: withdrawal takes effect at once, so nothing more is issued.
                refused = Decision(False, "WORKFLOW_ERROR", WF_WITHDRAWN, "aro.withdrawn", subscriber.for_manufacturer,
                                   f"the submitting ARO may no longer obtain Device Certificates ({error.code}: "
                                   f"{error.message})")
                return [refused for _ in csrs]
        return [Decision(d.allowed, "SUCCESS" if d.allowed else STATUS_BY_FAMILY.get((d.code or "IN:")[:2],
                                                                                     "INELIGIBLE"),
                         d.code, d.rule, d.manufacturing_flag, d.message) for d in decisions]

    def record(self, session: Session, subscriber: Subscriber, settled: Sequence[Settled], *, channel: str,
               reference: str) -> None:
        credential = session.get(Credential, int(subscriber.credential or 0))
        if credential is None:
            # decide_many refused every CSR of a submitter the RA does not know, so nothing is issued and
            # the outcome rows are the record. A serial here would be a certificate with no RA decision.
            if any(s.serial for s in settled):
                raise SmkiError("WF:AUTH3", "a certificate without an RA decision cannot be recorded; the "
                                "chunk is not committed.")
            return
        principal = principal_for(session, credential)  # who it was, even if withdrawn since
        outcomes = [DeviceOutcome(s.csr, s.status in ("SUCCESS", "CA_ERROR"), s.rule, s.code, s.message,
                                  s.manufacturing_flag, s.serial) for s in settled]
        record_device_decisions(session, principal, outcomes, channel=channel, reference=reference,
                                subscriber_id=int(subscriber.party_id),
                                manufacturer_id=int(subscriber.manufacturer) if subscriber.manufacturer else None)
