"""The narrow contract between the Device CSR services and the RA.

The services parse, count and queue; every decision about *who* is asking and *whether* a Device
Certificate may be issued to them goes through a :class:`DeviceCsrGate`. ``LedgerGate`` is the
sandbox's stand-in, answered from the issuance ledger and a small policy file; the RA (``smki.ra``)
provides the real implementation (:class:`smki.devicecsr.ra_gate.RaGate`, the default), and another can be
wired in through the app config key ``DEVICECSR_GATE`` (web) and ``SMKI_DEVICECSR_GATE=module:factory``
(worker; the factory takes the :class:`Instance`).

The web is an edge: it authenticates the caller (the RA's API authentication for the web services, the
portal's sign-in for the upload page) and hands the gate an explicit :class:`Caller`; no gate reads a
request, a header or a session.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from smki.core.db import Database
from smki.csr import ValidatedCsr
from smki.instance import Instance
from smki.issuance import device_certificate_counts
from smki.ra.identity import Principal

# Ad hoc Device CSRs are only for these User Roles (SEC Appendix M) [V]; "DCC" is the DCC itself.
ADHOC_ROLES = frozenset({"IS", "GS", "DCC"})
# Where a TLS-terminating front end passes the name of the IKI client credential it verified (the
# stand-in's callers); the web edge copies it into Caller.credential and no gate reads headers itself.
CREDENTIAL_HEADER = "X-SMKI-Client"
WF_NOT_AUTHENTICATED = "WF:AUTH1"
WF_NOT_AUTHORISED = "WF:AUTH2"


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the web edge authenticated them, and whom they name. The gate decides what that
    makes them: a :class:`Subscriber`, or a :class:`Refusal`."""

    principal: Principal | None = None   # authenticated by the RA (API token, IKI certificate, portal sign-in)
    credential: str | None = None        # the verified client credential's name a front end passed on
    subscriber: str | None = None        # the ``Subscriber`` parameter, as given
    manufacturer: str | None = None      # the ``Manufacturer`` parameter, as given


@dataclass(frozen=True)
class Subscriber:
    """Who is calling, as the RA established it from their IKI credential."""

    party_id: str
    user_roles: frozenset[str]
    device_subscriber: bool            # an Authorised Subscriber for Device Certificates
    requested_by: str                  # the system or ARO credential, for the ledger
    for_manufacturer: bool = False     # submitting on behalf of a manufacturer (ManufacturingFlag)
    # The gate's own reference to the credential, so a batch decided later (by a worker) is decided for
    # the same person, and refused if their credentials were withdrawn meanwhile.
    credential: str | None = None
    manufacturer: str | None = None    # the manufacturer submitted for, when for_manufacturer

    def to_json(self) -> str:
        return json.dumps({"party_id": self.party_id, "user_roles": sorted(self.user_roles),
                           "device_subscriber": self.device_subscriber, "requested_by": self.requested_by,
                           "for_manufacturer": self.for_manufacturer, "credential": self.credential,
                           "manufacturer": self.manufacturer})

    @classmethod
    def from_json(cls, text: str) -> Subscriber:
        data = json.loads(text)
        return cls(data["party_id"], frozenset(data["user_roles"]), bool(data["device_subscriber"]),
                   data["requested_by"], bool(data.get("for_manufacturer", False)), data.get("credential"),
                   data.get("manufacturer"))


@dataclass(frozen=True)
class Refusal:
    """Authentication failed: a WF: code and a sentence."""

    code: str
    text: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: str                        # SUCCESS when allowed, else INELIGIBLE (or WORKFLOW_ERROR)
    code: str | None = None            # IN:... when refused
    rule: str = ""                     # which rule decided, for people and the audit
    manufacturing_flag: bool = False
    message: str = ""                  # what the caller can do about a refusal


@dataclass(frozen=True)
class Settled:
    """One CSR's fate, as the gate records it: the decision (or the earlier check that refused it) and,
    when issued, the serial."""

    csr: ValidatedCsr
    status: str
    code: str | None
    rule: str
    message: str
    manufacturing_flag: bool
    serial: str | None


@runtime_checkable
class DeviceCsrGate(Protocol):
    def authenticate(self, caller: Caller) -> Subscriber | Refusal:
        """Who the caller the web edge authenticated is, as a Subscriber for whom they name."""

    def known_device(self, device_id: str) -> bool:
        """Whether the Device ID (16 upper-case hex digits) already has a DS or KA certificate."""

    def device_certificate_count(self, device_id: str) -> int:
        """How many Device Certificates the Device ID has."""

    def device_certificate_counts(self, device_ids: Collection[str]) -> Mapping[str, int]:
        """The same for many Device IDs in one query (a batch chunk); absent IDs count 0."""

    def decide(self, subscriber: Subscriber, csr: ValidatedCsr, channel: str) -> Decision:
        """Eligibility (SEC L3.16 and the RAPP): may this subscriber have this Device Certificate
        through this channel (``adhoc``, ``batch`` or ``portal``)?"""

    def decide_many(self, subscriber: Subscriber, csrs: Sequence[ValidatedCsr], channel: str) -> list[Decision]:
        """:meth:`decide` for a whole chunk, in order (a later CSR for the same device counts the earlier)."""

    def record(self, session: Session, subscriber: Subscriber, settled: Sequence[Settled], *, channel: str,
               reference: str) -> None:
        """Record the decisions in ``session``'s transaction, the one that commits the certificates' ledger
        rows: called before they are written, so no certificate commits without its decision's record."""


@dataclass
class LedgerGate:
    """The sandbox stand-in: credentials and device states from ``policies/device_csr_gate.yaml``
    (or given directly), device history from the issuance ledger."""

    database: Database
    credentials: Mapping[str, Subscriber] = field(default_factory=dict)
    # Installed devices and their responsible supplier's Party (the provisioning-state matrix [A]):
    # a device not listed is pre-installation, open to any Authorised Subscriber for Device Certificates.
    device_owners: Mapping[str, str] = field(default_factory=dict)
    dcc_party: str = "DCC"

    @classmethod
    def from_instance(cls, instance: Instance) -> LedgerGate:
        policy = instance.policies.device_csr_gate  # policies/device_csr_gate.yaml, validated at start
        credentials = {
            name: Subscriber(entry.party_id, frozenset(entry.user_roles), entry.device_subscriber, name,
                             entry.for_manufacturer)
            for name, entry in policy.credentials.items()
        }
        return cls(instance.database, credentials, policy.device_owners, policy.dcc_party)

    def authenticate(self, caller: Caller) -> Subscriber | Refusal:
        if not caller.credential:
            return Refusal(WF_NOT_AUTHENTICATED, "no client credential was presented; call with your system IKI "
                           "certificate.")
        subscriber = self.credentials.get(caller.credential)
        if subscriber is None:
            return Refusal(WF_NOT_AUTHORISED, "the client credential is not registered with the RA.")
        return subscriber

    def known_device(self, device_id: str) -> bool:
        return self.device_certificate_count(device_id) > 0

    def device_certificate_count(self, device_id: str) -> int:
        return self.device_certificate_counts([device_id]).get(device_id, 0)

    def device_certificate_counts(self, device_ids: Collection[str]) -> Mapping[str, int]:
        with self.database.session() as session:
            return device_certificate_counts(session, device_ids)

    def decide(self, subscriber: Subscriber, csr: ValidatedCsr, channel: str) -> Decision:
        flag = subscriber.for_manufacturer
        if not subscriber.device_subscriber:
            return Decision(False, "INELIGIBLE", "IN:SUB1", "not an Authorised Subscriber for Device "
                            "Certificates", flag)
        if channel == "adhoc" and not subscriber.user_roles & ADHOC_ROLES and \
                subscriber.party_id != self.dcc_party:
            return Decision(False, "INELIGIBLE", "IN:ROLE1", "the ad hoc service is only for Import "
                            "Suppliers, Gas Suppliers and the DCC", flag)
        device = csr.device_id.hex if csr.device_id else ""
        owner = self.device_owners.get(device)
        if owner is not None and owner != subscriber.party_id and subscriber.party_id != self.dcc_party:
            return Decision(False, "INELIGIBLE", "IN:STATE1", "the device is installed and another "
                            "Party is its responsible supplier", flag)
        return Decision(True, "SUCCESS", None, "eligible", flag)

    def decide_many(self, subscriber: Subscriber, csrs: Sequence[ValidatedCsr], channel: str) -> list[Decision]:
        return [self.decide(subscriber, csr, channel) for csr in csrs]

    def record(self, session: Session, subscriber: Subscriber, settled: Sequence[Settled], *, channel: str,
               reference: str) -> None:
        """The stand-in keeps no records of its own: the outcomes rows are its record."""


def ledger_gate(instance: Instance) -> LedgerGate:
    """``SMKI_DEVICECSR_GATE=smki.devicecsr.gate:ledger_gate``: the stand-in, for rehearsals without an RA
    population (callers named by the ``X-SMKI-Client`` header, from policies/device_csr_gate.yaml)."""
    return LedgerGate.from_instance(instance)


def load_gate(instance: Instance) -> DeviceCsrGate:
    """The gate named by ``SMKI_DEVICECSR_GATE`` (``module:factory(instance)``), else the RA's."""
    target = instance.settings.devicecsr_gate
    if not target:
        from smki.devicecsr.ra_gate import RaGate

        return RaGate(instance)
    module, _, name = target.partition(":")
    factory = getattr(importlib.import_module(module), name)
    return factory(instance)
