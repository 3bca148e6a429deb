"""The CS02b vocabulary as typed, immutable values, named as GBCS and its ASN.1 module name them.

Certificates stay as their DER octets: the codec carries them, the device (or the CA) reads them. Every
value here is what a decoder returns and what an encoder accepts; none of them touches the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, Flag, IntEnum

from smki.core.eui64 import Eui64


class CraFlag(IntEnum):
    """First octet of the transaction ID: what kind of message this is."""

    COMMAND = 1
    RESPONSE = 2
    ALERT = 3


class CredentialsReplacementMode(IntEnum):
    """Who authorises the replacement, and so which cells it may touch (recovery.md, mode table)."""

    ROOT_BY_SUPPLIER = 0
    ROOT_BY_WAN_PROVIDER = 1
    SUPPLIER_BY_SUPPLIER = 2
    NETWORK_OPERATOR_BY_NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER_BY_ACB = 4
    WAN_PROVIDER_BY_WAN_PROVIDER = 5
    TRANS_COS_BY_TRANS_COS = 6
    SUPPLIER_BY_TRANS_COS = 7
    ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY = 8
    ANY_BY_CONTINGENCY = 9

    @property
    def message_code(self) -> int:
        """The GBCS message code of a CS02b command or response in this mode (0x0100 + mode)."""
        return CS02B_MESSAGE_CODE_BASE + self.value

    @property
    def mac_required(self) -> bool:
        """Recovery and contingency commands travel without the ACB's MAC, so they work when the ACB cannot."""
        return self not in (CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY,
                            CredentialsReplacementMode.ANY_BY_CONTINGENCY)

    @property
    def signature_required(self) -> bool:
        """The ACB authorises its own replacement with its MAC alone; every other mode is signed."""
        return self is not CredentialsReplacementMode.ACCESS_CONTROL_BROKER_BY_ACB


CS02B_MESSAGE_CODE_BASE = 0x0100
CS02B_ALERT_MESSAGE_CODE = 0x00CB


class RemotePartyRole(IntEnum):
    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6
    ISSUING_AUTHORITY = 7
    OTHER = 127


class KeyUsage(Flag):
    """The KeyUsage bits a trust anchor cell names (X.509 bit numbers in the BIT STRING)."""

    DIGITAL_SIGNATURE = 1
    KEY_AGREEMENT = 2
    KEY_CERT_SIGN = 4
    CRL_SIGN = 8


class CellUsage(IntEnum):
    MANAGEMENT = 0
    PREPAYMENT_TOP_UP = 1


class SeqNumberUsage(IntEnum):
    PREPAYMENT_TOP_UP = 0


class CpvTimeChecks(IntEnum):
    """applyTimeBasedCPVChecks: absent means the device applies them."""

    APPLY = 0
    DISAPPLY = 1


class StatusCode(IntEnum):
    """Per-cell outcome of a replacement (the CS02b subset of the TAMP status codes)."""

    SUCCESS = 0
    BAD_CERTIFICATE = 5
    NO_TRUST_ANCHOR = 10
    INSUFFICIENT_MEMORY = 17
    TRUST_ANCHOR_NOT_FOUND = 25
    RESOURCES_BUSY = 30
    OTHER = 127


class LengthEncoding(Enum):
    """How a payload's ASN.1 lengths are written.

    DER is minimal. Some devices (the RTDS responses and alerts) write every long length with two octets
    (``82 00 CA`` for 202): BER, accepted on decode and reproduced on encode so a message round-trips.
    """

    DER = "der"
    LONG_TWO_OCTETS = "long-two-octets"


@dataclass(frozen=True, slots=True)
class TrustAnchorCell:
    """TrustAnchorCellIdentifier: a device's cell, keyed by role, key usage and cell usage."""

    role: RemotePartyRole
    key_usage: KeyUsage
    cell_usage: CellUsage = CellUsage.MANAGEMENT


@dataclass(frozen=True, slots=True)
class SpecialistSeqNumber:
    usage: SeqNumberUsage
    seq_number: int


@dataclass(frozen=True, slots=True)
class RemotePartySeqNumberChange:
    role: RemotePartyRole
    floor_seq_number: int
    specialist_floor_seq_numbers: tuple[SpecialistSeqNumber, ...] | None = None


@dataclass(frozen=True, slots=True)
class AuthorisingRemotePartyControl:
    mode: CredentialsReplacementMode
    seq_number: int
    plaintext_symmetric_key: bytes | None = None
    time_based_cpv_checks: CpvTimeChecks | None = None
    authorising_cell: TrustAnchorCell | None = None
    new_floor_seq_number: int | None = None
    new_specialist_floor_seq_numbers: tuple[SpecialistSeqNumber, ...] | None = None
    other_seq_number_changes: tuple[RemotePartySeqNumberChange, ...] | None = None


@dataclass(frozen=True, slots=True)
class TrustAnchorReplacement:
    certificate: bytes  # DER
    target_cell: TrustAnchorCell


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentials:
    """The CS02b command payload."""

    control: AuthorisingRemotePartyControl
    replacements: tuple[TrustAnchorReplacement, ...]
    certification_path: tuple[bytes, ...] = ()  # DER certificates, in practice the Issuing OCA
    execution_date_time: datetime | None = None  # a future-dated command; aware, UTC

    @property
    def mode(self) -> CredentialsReplacementMode:
        return self.control.mode


@dataclass(frozen=True, slots=True)
class ReplacementOutcome:
    cell: TrustAnchorCell
    status: StatusCode
    existing_subject_id: bytes
    existing_subject_key_id: bytes
    replacing_subject_id: bytes
    replacing_subject_key_id: bytes


@dataclass(frozen=True, slots=True)
class ExecutionOutcome:
    seq_number: int  # the authorising remote party's
    mode: CredentialsReplacementMode
    seq_number_changes: tuple[RemotePartySeqNumberChange, ...]
    outcomes: tuple[ReplacementOutcome, ...]


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsResponse:
    """commandAccepted, with the outcome when the command ran at once (absent for a future-dated one)."""

    outcome: ExecutionOutcome | None = None


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsAlert:
    """A future-dated command, run: 0x8F66 success, 0x8F67 failure (the alert code is kept as received)."""

    alert_code: int
    execution_date_time: datetime
    outcome: ExecutionOutcome


Payload = UpdateSecurityCredentials | UpdateSecurityCredentialsResponse | UpdateSecurityCredentialsAlert


@dataclass(frozen=True, slots=True)
class GroupingHeader:
    """The General Signing APDU's header: transaction ID, business originator and target, and so on."""

    cra_flag: CraFlag
    originator_counter: int  # 8 octets; a response or alert carries the counter it answers
    business_originator: Eui64
    business_target: Eui64
    message_code: int
    date_time: bytes | None = None  # a DLMS date-time, 12 octets, as the device wrote it (responses)


@dataclass(frozen=True, slots=True)
class GeneralSigning:
    """A General Signing APDU: header, payload and the originator's signature.

    ``signature`` is r || s (64 octets), or None for an unsigned APDU: ``pre_command`` True means no
    signature field at all (the DUIS pre-command, before signing), False a zero-length one (the ACB's
    MAC-only command).
    """

    header: GroupingHeader
    payload: Payload
    signature: bytes | None = None
    pre_command: bool = False
    # How the payload's lengths are written, not what the message says: left out of equality (a payload
    # with no long length reads the same in both styles).
    length_encoding: LengthEncoding = field(default=LengthEncoding.DER, compare=False)


@dataclass(frozen=True, slots=True)
class GeneralCiphering:
    """The ACB's MAC-only General Ciphering wrapper around a General Signing APDU."""

    apdu: GeneralSigning
    mac: bytes  # 12 octets of AES-GCM tag
    invocation_counter: int = 0


Message = GeneralCiphering | GeneralSigning
