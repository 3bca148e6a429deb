"""A device's processing of a CS02b command (gbcs-cs02b.md section 5), as a pure function.

``process(state, octets, now) -> Processed``: the device's new state and what it answers. No database, no clock
of its own; the same inputs give the same outcome (bar the ECDSA nonce of the response's signature).

Order, as GBCS gives it: faults that stop the command reaching the device; the wrapping the mode requires (the
ACB's MAC for modes 0..7); the authorising key (mode 9: the Contingency public key unwrapped from the root cell
with the plaintext symmetric key) and the signature; anti-replay; then, per replacement, whether the mode
authorises the cell, the certificate's role and key usage against the cell, and its certification path to the
current root. A command refused before the replacements changes nothing and is answered by a coded
:class:`Refusal` (a GBCS device discards it and raises a security alert that is not a CS02b message). A command
that gets as far as the replacements is answered by a signed response with a status per cell; each cell is
replaced only when its own checks pass (per cell, as the RTDS error responses show).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap

from smki.ca.contingency import unwrap_contingency_key
from smki.core.eui64 import Eui64
from smki.estate.device import (
    NO_SUBJECT,
    WRAPPED_APEX_CONTINGENCY_KEY,
    Anchor,
    Cell,
    DeviceState,
    IdentityMemo,
    cell_index,
    cell_key,
    read_certificate,
)
from smki.estate.faults import Fault
from smki.gbcs import (
    ALERT_FUTURE_DATED_FAILURE,
    ALERT_FUTURE_DATED_SUCCESS,
    CpvTimeChecks,
    CraFlag,
    CredentialsReplacementMode,
    ExecutionOutcome,
    GbcsError,
    GeneralCiphering,
    GeneralSigning,
    KeyUsage,
    RemotePartyRole,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    StatusCode,
    TrustAnchorCell,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsResponse,
    build,
    decode,
    decode_framed,
    encode_payload,
    sign_and_encode,
    sign_encoded,
    verify_frame_signature,
    verify_mac,
)

Mode = CredentialsReplacementMode
Role = RemotePartyRole

NOT_A_COMMAND = "ES:PRC1"
WRAPPING = "ES:PRC2"
SIGNATURE = "ES:PRC3"
REPLAY = "ES:PRC4"
NOT_FOR_THIS_DEVICE = "ES:PRC5"
OFFLINE = "ES:PRC6"
LOST = "ES:PRC7"

CODES = {
    NOT_A_COMMAND: "the octets are not a CS02b command (the codec's GB: code is in the message)",
    WRAPPING: "the wrapping the mode requires is missing, or the ACB's MAC does not verify",
    SIGNATURE: "no trustworthy authorising cell, or the signature does not verify with its key (mode 9: the "
               "plaintext symmetric key does not unwrap the Contingency key from the root cell)",
    REPLAY: "anti-replay: the originator counter or the sequence number does not exceed the stored counter",
    NOT_FOR_THIS_DEVICE: "the command's business target is another device",
    OFFLINE: "the device is offline (fault): it answers nothing",
    LOST: "the command was lost in transit (fault): the device never saw it",
}

# Who signs in each mode (the role whose cell authorises and whose counter guards against replay), and the
# roles whose cells the mode may replace (recovery.md, mode table). Mode 9 is authorised by the Contingency
# key wrapped in the root cell, and counted against the root's counter.
SIGNER: dict[Mode, Role] = {
    Mode.ROOT_BY_SUPPLIER: Role.SUPPLIER, Mode.ROOT_BY_WAN_PROVIDER: Role.WAN_PROVIDER,
    Mode.SUPPLIER_BY_SUPPLIER: Role.SUPPLIER, Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: Role.NETWORK_OPERATOR,
    Mode.ACCESS_CONTROL_BROKER_BY_ACB: Role.ACCESS_CONTROL_BROKER, Mode.WAN_PROVIDER_BY_WAN_PROVIDER: Role.WAN_PROVIDER,
    Mode.TRANS_COS_BY_TRANS_COS: Role.TRANSITIONAL_COS, Mode.SUPPLIER_BY_TRANS_COS: Role.TRANSITIONAL_COS,
    Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: Role.RECOVERY, Mode.ANY_BY_CONTINGENCY: Role.ROOT}
_ALL = frozenset(Role) - {Role.ISSUING_AUTHORITY, Role.OTHER}
MAY_REPLACE: dict[Mode, frozenset[Role]] = {
    Mode.ROOT_BY_SUPPLIER: frozenset({Role.ROOT}), Mode.ROOT_BY_WAN_PROVIDER: frozenset({Role.ROOT}),
    Mode.SUPPLIER_BY_SUPPLIER: frozenset({Role.SUPPLIER}),
    Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: frozenset({Role.NETWORK_OPERATOR}),
    Mode.ACCESS_CONTROL_BROKER_BY_ACB: frozenset({Role.ACCESS_CONTROL_BROKER}),
    Mode.WAN_PROVIDER_BY_WAN_PROVIDER: frozenset({Role.WAN_PROVIDER}),
    Mode.TRANS_COS_BY_TRANS_COS: frozenset({Role.TRANSITIONAL_COS}),
    Mode.SUPPLIER_BY_TRANS_COS: frozenset({Role.SUPPLIER}),
    Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: _ALL - {Role.ROOT},
    Mode.ANY_BY_CONTINGENCY: _ALL}
_FAULT_STATUS = ((int(Fault.BUSY), StatusCode.RESOURCES_BUSY),
                 (int(Fault.OUT_OF_MEMORY), StatusCode.INSUFFICIENT_MEMORY))
_OFFLINE, _COMMAND_LOST = int(Fault.OFFLINE), int(Fault.COMMAND_LOST)
_UNABLE = int(Fault.BUSY | Fault.OUT_OF_MEMORY)
MAX_PATH = 3   # certification-path certificates a command may carry
# Recovery method 2 (recovery.md): the DCC takes temporary control of a Subscriber's cells by placing its Access
# Control Broker's certificates there with the Recovery (or Contingency) key; no other role stands in for another.
_STAND_IN_MODES = frozenset({Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, Mode.ANY_BY_CONTINGENCY})
_STAND_IN_CELLS = frozenset({Role.SUPPLIER, Role.NETWORK_OPERATOR})


@dataclass(frozen=True)
class Refusal:
    code: str          # ES:PRCn, or the codec's GB:E0nn for octets that are not a CS02b message
    message: str


@dataclass(frozen=True)
class Processed:
    """What one delivery did: the device's new state, and its answer (a signed response or alert, encoded), or
    the refusal when it answers nothing a CS02b codec reads."""

    state: DeviceState
    answer: bytes | None = None
    refusal: Refusal | None = None
    outcomes: tuple[ReplacementOutcome, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.refusal is None


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(code, message)


def process(state: DeviceState, octets: bytes, now: dt.datetime) -> Processed:
    """The device ``state`` receives ``octets`` at ``now``."""
    faults = int(state.faults)   # plain int arithmetic: IntFlag operators build enum members on every call
    if faults & _OFFLINE:
        return Processed(state, refusal=Refusal(OFFLINE, f"device {state.device_id.hex().upper()} is offline"))
    if faults & _COMMAND_LOST:
        # One command is lost; the next one arrives.
        return Processed(dataclasses.replace(state, faults=state.faults & ~Fault.COMMAND_LOST),
                         refusal=Refusal(LOST, "the command was lost in transit before it reached the device"))
    try:
        apdu, command = _authenticate(state, octets)
    except _Refused as refused:
        return Processed(state, refusal=refused.refusal)
    mode, control = command.mode, command.control
    signer = SIGNER[mode]
    if faults & _UNABLE:
        for fault, status in _FAULT_STATUS:
            if faults & fault:
                # Authenticated, then unable to act: every cell answered with the fault's status, nothing changed.
                outcomes = tuple(_outcome(r.target_cell, status, state.cell(r.target_cell), None)
                                 for r in command.replacements)
                answer = _respond(state, apdu, _response_payload(
                    ExecutionOutcome(control.seq_number, mode, (), outcomes)), now)
                return Processed(state, answer, outcomes=outcomes)
    consumed = _counters(state.counters, {int(signer): control.seq_number})
    if command.execution_date_time is not None and command.execution_date_time > now:
        # Accepted now, run later: the counter is consumed at once so the command cannot be replayed meanwhile.
        later = dataclasses.replace(state, counters=consumed, pending=(*state.pending, bytes(octets)))
        return Processed(later, _respond(state, apdu, _response_payload(None), now))
    done = _executed(state.cells, command, now)
    consumed.update(done.floors)
    new_state = DeviceState(state.device_id, state.ds_private_key, state.ka_private_key, done.cells, consumed,
                            state.faults, state.pending, state.alerts_sent)
    return Processed(new_state, _respond(state, apdu, done.response, now), outcomes=done.outcome.outcomes)


def execution_time(octets: bytes) -> dt.datetime:
    """When a future-dated command the device accepted is to run (its ``executionDateTime``)."""
    message = decode(octets)   # authenticated when it arrived
    apdu = message.apdu if isinstance(message, GeneralCiphering) else message
    command = apdu.payload
    assert isinstance(command, UpdateSecurityCredentials) and command.execution_date_time is not None
    return command.execution_date_time


def run_due(state: DeviceState, now: dt.datetime) -> tuple[DeviceState, list[bytes]]:
    """Run every future-dated command whose time has come, in the order received; one signed alert each
    (0x8F66 when every cell succeeded, 0x8F67 otherwise)."""
    alerts: list[bytes] = []
    waiting: list[bytes] = []
    for octets in state.pending:
        message = decode(octets)   # authenticated when it arrived
        apdu = message.apdu if isinstance(message, GeneralCiphering) else message
        command = apdu.payload
        assert isinstance(command, UpdateSecurityCredentials) and command.execution_date_time is not None
        if command.execution_date_time > now:
            waiting.append(octets)
            continue
        state, outcome = _execute(state, command, now)
        code = ALERT_FUTURE_DATED_SUCCESS if all(o.status is StatusCode.SUCCESS for o in outcome.outcomes) \
            else ALERT_FUTURE_DATED_FAILURE
        state = dataclasses.replace(state, alerts_sent=state.alerts_sent + 1)
        alert = build.alert(Eui64(state.device_id), apdu.header.business_originator, state.alerts_sent,
                            command.execution_date_time, outcome, code)
        alerts.append(sign_and_encode(alert, state.ds_key()))
    return dataclasses.replace(state, pending=tuple(waiting)), alerts


# ---------------------------------------------------------------------------------------- authentication


def _authenticate(state: DeviceState, octets: bytes) -> tuple[GeneralSigning, UpdateSecurityCredentials]:
    try:
        message, frame = decode_framed(octets)   # the frame read once: the signature is checked over it below
    except GbcsError as error:
        raise _Refused(error.code, error.message) from None
    apdu = message.apdu if isinstance(message, GeneralCiphering) else message
    command = apdu.payload
    if apdu.header.cra_flag is not CraFlag.COMMAND or not isinstance(command, UpdateSecurityCredentials):
        raise _Refused(NOT_A_COMMAND, "a device acts on CS02b commands; this is a response or an alert")
    if apdu.header.business_target.value != state.device_id:
        raise _Refused(NOT_FOR_THIS_DEVICE, f"the command is for {apdu.header.business_target.hex}, not "
                       f"{state.device_id.hex().upper()}")
    mode = command.mode
    _check_wrapping(state, message, octets, mode)
    signer = SIGNER[mode]
    if mode.signature_required:
        key = _authorising_key(state, apdu, command)
        try:
            # Every device checks its own command's signature: nothing of this is shared between devices.
            verify_frame_signature(octets, frame, key)
        except GbcsError as error:
            raise _Refused(SIGNATURE, f"{error.message} ({error.code}, {signer.name.lower()} key)") from None
    stored = state.counters.get(int(signer), 0)
    if apdu.header.originator_counter <= stored or command.control.seq_number <= stored:
        raise _Refused(REPLAY, f"the {signer.name.lower()} counter stands at {stored}; this command carries "
                       f"{apdu.header.originator_counter} and sequence number {command.control.seq_number}")
    return apdu, command


def _check_wrapping(state: DeviceState, message: GeneralCiphering | GeneralSigning, octets: bytes,
                    mode: Mode) -> None:
    if not mode.mac_required:
        if isinstance(message, GeneralCiphering):
            raise _Refused(WRAPPING, f"a {mode.name} command travels signed, without the ACB's wrapper")
        return
    if not isinstance(message, GeneralCiphering):
        raise _Refused(WRAPPING, f"a {mode.name} command must carry the ACB's MAC (General Ciphering)")
    acb = state.cell(TrustAnchorCell(Role.ACCESS_CONTROL_BROKER, KeyUsage.KEY_AGREEMENT))
    anchor = read_certificate(acb.anchor) if acb is not None and acb.trustworthy and acb.anchor else None
    acb_key = anchor.public_key() if anchor is not None else None
    device_key = state.ka_key()
    if acb_key is None or device_key is None:
        raise _Refused(WRAPPING, "the device holds no trustworthy ACB key-agreement cell (or no KA key) to check "
                       "the MAC with")
    try:
        verify_mac(octets, device_key, acb_key)
    except GbcsError as error:
        raise _Refused(WRAPPING, f"{error.message} ({error.code})") from None


def _authorising_key(state: DeviceState, apdu: GeneralSigning,
                     command: UpdateSecurityCredentials) -> ec.EllipticCurvePublicKey:
    mode = command.mode
    if mode is Mode.ANY_BY_CONTINGENCY:
        root = _root(state)
        wrapped = root.extension(WRAPPED_APEX_CONTINGENCY_KEY) if root is not None else None
        symmetric = command.control.plaintext_symmetric_key
        if wrapped is None or not symmetric:
            raise _Refused(SIGNATURE, "a contingency command needs the root cell's wrapped Contingency key and "
                           "the plaintext symmetric key")
        try:
            return unwrap_contingency_key(wrapped, symmetric)
        except (ValueError, TypeError, InvalidUnwrap, UnsupportedAlgorithm) as error:
            raise _Refused(SIGNATURE, "the plaintext symmetric key does not unwrap the Contingency key held in "
                           f"the root cell ({type(error).__name__})") from None
    key, holder, refusal = _KEYS.get((state.cells,), mode, lambda: _signing_cell_key(state, mode)) \
        if isinstance(state.cells, tuple) else _signing_cell_key(state, mode)
    if key is None or holder is None:
        raise _Refused(SIGNATURE, refusal or "no key")
    if holder != NO_SUBJECT and holder != apdu.header.business_originator.value:
        raise _Refused(SIGNATURE, f"the business originator {apdu.header.business_originator.hex} is not the "
                       f"holder of the authorising cell ({holder.hex().upper()})")
    return key


_KEYS: IdentityMemo[tuple[ec.EllipticCurvePublicKey | None, bytes | None, str | None]] = IdentityMemo()


def _signing_cell_key(state: DeviceState,
                      mode: Mode) -> tuple[ec.EllipticCurvePublicKey | None, bytes | None, str | None]:
    """The public key in the signing cell that authorises ``mode`` and its holder's Entity ID, or why there is
    none; a function of the cells alone (kept per cells and mode by :data:`_KEYS`)."""
    cell = state.cell(TrustAnchorCell(SIGNER[mode], KeyUsage.DIGITAL_SIGNATURE))
    if cell is None or not cell.trustworthy or cell.anchor is None:
        state_text = "absent" if cell is None else cell.state
        return None, None, (f"the {SIGNER[mode].name.lower()} digital signing cell is {state_text}: no key to "
                            "verify the command with")
    anchor = read_certificate(cell.anchor)
    key = anchor.public_key() if anchor is not None else None
    if anchor is None or key is None:
        return None, None, "the authorising cell holds no P-256 key"
    return key, anchor.subject_id, None


def _root(state: DeviceState) -> Anchor | None:
    cell = state.cell(TrustAnchorCell(Role.ROOT, KeyUsage.KEY_CERT_SIGN))
    return read_certificate(cell.anchor) if cell is not None and cell.anchor is not None else None


# ---------------------------------------------------------------------------------------- execution


def _execute(state: DeviceState, command: UpdateSecurityCredentials,
             now: dt.datetime) -> tuple[DeviceState, ExecutionOutcome]:
    done = _executed(state.cells, command, now)
    return (dataclasses.replace(state, cells=done.cells, counters=_counters(state.counters, done.floors)),
            done.outcome)


@dataclass(frozen=True, slots=True)
class _Execution:
    """What a command does to a device's cells: a function of the cells, the command and the moment alone."""

    cells: tuple[Cell, ...]
    floors: Mapping[int, int]          # the counters it resets (not to be changed: shared)
    outcome: ExecutionOutcome
    response: bytes                    # the response payload that reports it, encoded (DER)


# The devices of a delivery hold one of a few cell tuples and get the same decoded command: each execution is
# worked out once and shared (the checks of every replacement are the same for every device that holds the
# same cells; the signature and the anti-replay counter, which differ, are checked per device before this).
_EXECUTIONS: IdentityMemo[_Execution] = IdentityMemo()


def _executed(cells: tuple[Cell, ...], command: UpdateSecurityCredentials, now: dt.datetime) -> _Execution:
    if not isinstance(cells, tuple):
        return _run(tuple(cells), command, now)
    return _EXECUTIONS.get((cells, command), now, lambda: _run(cells, command, now))


def _run(held: tuple[Cell, ...], command: UpdateSecurityCredentials, now: dt.datetime) -> _Execution:
    """Replace what passes its checks, cell by cell; the root first, so that the other replacements of a
    contingency command are validated against the new root."""
    mode, control = command.mode, command.control
    held_by_key = cell_index(held)
    cells = {(c.role, c.key_usage, c.cell_usage): c for c in held}
    path = tuple(a for a in (read_certificate(der) for der in command.certification_path[:MAX_PATH])
                 if a is not None)
    time_checks = control.time_based_cpv_checks is not CpvTimeChecks.DISAPPLY
    order = sorted(range(len(command.replacements)),
                   key=lambda i: command.replacements[i].target_cell.role is not Role.ROOT)
    results: dict[int, ReplacementOutcome] = {}
    replaced_roles: set[int] = set()
    for index in order:
        replacement = command.replacements[index]
        target = replacement.target_cell
        current = held_by_key.get(cell_key(target))
        key = None if current is None else (current.role, current.key_usage, current.cell_usage)
        existing = cells[key] if key is not None else None
        candidate = read_certificate(replacement.certificate)
        status = _check(mode, target, existing, candidate, path, cells, now, time_checks)
        if status is StatusCode.SUCCESS and existing is not None and key is not None and candidate is not None:
            cells[key] = Cell(existing.role, existing.key_usage, existing.cell_usage, candidate.der, "replaced")
            replaced_roles.add(existing.role)
        results[index] = _outcome(target, status, existing, candidate if status is StatusCode.SUCCESS else None)
    floors = _floors(command, replaced_roles)
    changes = tuple(RemotePartySeqNumberChange(Role(role), floor) for role, floor in sorted(floors.items()))
    outcomes = tuple(results[i] for i in range(len(command.replacements)))
    outcome = ExecutionOutcome(control.seq_number, mode, changes, outcomes)
    return _Execution(tuple(cells.values()), floors, outcome, _response_payload(outcome))


def _check(mode: Mode, target: TrustAnchorCell, existing: Cell | None, candidate: Anchor | None,
           path: tuple[Anchor, ...], cells: dict[tuple[int, str, int], Cell], now: dt.datetime,
           time_checks: bool) -> StatusCode:
    if target.role not in MAY_REPLACE[mode]:
        return StatusCode.OTHER                                  # the mode does not authorise this cell
    if existing is None:
        return StatusCode.TRUST_ANCHOR_NOT_FOUND                 # the device has no such cell
    if candidate is None or candidate.public_key() is None:
        return StatusCode.BAD_CERTIFICATE
    if existing.key_usage not in candidate.key_usages:
        return StatusCode.BAD_CERTIFICATE
    if target.role is Role.ROOT:
        # A new root is its own issuer; the command's authorisation (contingency or planned root change) is
        # what makes it trusted.
        ok = candidate.is_ca and _issued_by(candidate, candidate) and _in_time([candidate], now, time_checks)
        return StatusCode.SUCCESS if ok else StatusCode.BAD_CERTIFICATE
    if candidate.role_ou is None or (candidate.role_ou.upper() != f"{int(target.role):02X}" and not (
            mode in _STAND_IN_MODES and target.role in _STAND_IN_CELLS
            and candidate.role_ou.upper() == f"{int(Role.ACCESS_CONTROL_BROKER):02X}")):
        return StatusCode.BAD_CERTIFICATE                        # the role in the OU is not the cell's
    root_cell = next((c for k, c in cells.items() if k[0] == Role.ROOT and c.anchor is not None), None)
    root = read_certificate(root_cell.anchor) if root_cell is not None and root_cell.anchor else None
    if root is None:
        return StatusCode.NO_TRUST_ANCHOR
    return _path_status(candidate, path, root, now if time_checks else None)


@lru_cache(maxsize=1024)
def _path_status(candidate: Anchor, path: tuple[Anchor, ...], root: Anchor, now: dt.datetime | None) -> StatusCode:
    """Whether ``candidate`` chains through ``path`` to ``root`` and (unless ``now`` is None) every link is in
    time. Cached: a drill places the same few certificates, with the same path, on every device at one moment
    (an Anchor is one object per DER, compared by identity)."""
    chain = _chain(candidate, list(path), root)
    if chain is None:
        return StatusCode.NO_TRUST_ANCHOR                        # no path to the current root
    in_time = now is None or _in_time(chain, now, True)
    return StatusCode.SUCCESS if in_time else StatusCode.BAD_CERTIFICATE


def _chain(leaf: Anchor, path: list[Anchor], root: Anchor) -> list[Anchor] | None:
    """The certificates from ``leaf`` up to (not including) ``root``, each signed by the next, or None."""
    chain = [leaf]
    current = leaf
    for _step in range(MAX_PATH + 1):
        if _issued_by(current, root):
            return chain
        issuer = next((p for p in path if p not in chain and p.is_ca and "keyCertSign" in p.key_usages
                       and _issued_by(current, p)), None)
        if issuer is None:
            return None
        chain.append(issuer)
        current = issuer
    return None


def _issued_by(child: Anchor, issuer: Anchor) -> bool:
    return _signed_by(child.der, issuer.der)


@lru_cache(maxsize=4096)
def _signed_by(child_der: bytes, issuer_der: bytes) -> bool:
    """Whether ``issuer`` signed ``child``; cached by their octets, because a drill sends the same few
    certificates to every device and a signature check is the costliest step of path validation."""
    child, issuer = read_certificate(child_der), read_certificate(issuer_der)
    if child is None or issuer is None or child.certificate.issuer != issuer.certificate.subject:
        return False
    try:
        child.certificate.verify_directly_issued_by(issuer.certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _in_time(chain: Iterable[Anchor], now: dt.datetime, apply: bool) -> bool:
    return not apply or all(a.not_before <= now <= a.not_after
                            for a in chain)


def _floors(command: UpdateSecurityCredentials, replaced: set[int]) -> dict[int, int]:
    """The counters the command resets: the other roles it lists, and every other role with a replaced cell to
    0 (a new key holder starts counting afresh). The authorising role keeps the command's sequence number unless
    the command gives it a new floor, so that the command itself can never be replayed."""
    control = command.control
    signer = int(SIGNER[command.mode])
    floors = {int(change.role): change.floor_seq_number for change in control.other_seq_number_changes or ()}
    for role in replaced:
        if role != signer and role != Role.ROOT:
            floors.setdefault(role, 0)
    if control.new_floor_seq_number is not None:
        floors[signer] = control.new_floor_seq_number
    return floors


def _counters(counters: Mapping[int, int], changes: Mapping[int, int]) -> dict[int, int]:
    merged = dict(counters)
    merged.update(changes)
    return merged


def _outcome(cell: TrustAnchorCell, status: StatusCode, existing: Cell | None,
             replacing: Anchor | None) -> ReplacementOutcome:
    held = read_certificate(existing.anchor) if existing is not None and existing.anchor is not None else None
    subject, key_id = (held.subject_id, held.key_identifier) if held is not None else (NO_SUBJECT, b"")
    new_subject, new_key_id = (replacing.subject_id, replacing.key_identifier) if replacing is not None \
        else (subject, key_id)
    return ReplacementOutcome(cell, status, subject, key_id, new_subject, new_key_id)


def _response_payload(outcome: ExecutionOutcome | None) -> bytes:
    return encode_payload(UpdateSecurityCredentialsResponse(outcome))


def _respond(state: DeviceState, apdu: GeneralSigning, payload: bytes, now: dt.datetime) -> bytes:
    """The device's signed response to ``apdu`` (``payload``: the response payload, encoded): the octets
    ``sign_and_encode(build.response(apdu.header, outcome, now), key)`` gives."""
    return sign_encoded(build.response_header(apdu.header, now), payload, state.ds_key())
