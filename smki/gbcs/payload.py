"""CS02b payloads: the DER (asn1crypto) structures to and from the typed values in :mod:`smki.gbcs.values`.

Decoding is total: any octets give a value or a :class:`GbcsError` (asn1crypto parses lazily, so the
whole conversion runs inside one guard). Encoding writes DER, or the two-octet long lengths some devices
use (:class:`LengthEncoding`), so that a decoded message encodes to the octets it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import IntEnum
from functools import lru_cache
from typing import Any, TypeVar

from asn1crypto import core, parser

from smki.gbcs import asn1
from smki.gbcs.errors import (
    BAD_PAYLOAD,
    INVALID_VALUE,
    NOT_A_CERTIFICATE,
    OUT_OF_RANGE,
    UNKNOWN_CELL_USAGE,
    UNKNOWN_MODE,
    UNKNOWN_ROLE,
    UNKNOWN_STATUS,
    UNSUPPORTED_KEY_USAGE,
    GbcsError,
    gbcs_error,
)
from smki.gbcs.values import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CpvTimeChecks,
    CredentialsReplacementMode,
    ExecutionOutcome,
    KeyUsage,
    LengthEncoding,
    Payload,
    RemotePartyRole,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SeqNumberUsage,
    SpecialistSeqNumber,
    StatusCode,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)

Octets = bytes | bytearray | memoryview
# Sequence numbers and counters are 8-octet unsigned values on the device.
MAX_SEQ_NUMBER = (1 << 64) - 1
_KEY_USAGE_NAMES = {KeyUsage.DIGITAL_SIGNATURE: "digital_signature", KeyUsage.KEY_AGREEMENT: "key_agreement",
                    KeyUsage.KEY_CERT_SIGN: "key_cert_sign", KeyUsage.CRL_SIGN: "crl_sign"}
_KEY_USAGE_BY_NAME = {name: usage for usage, name in _KEY_USAGE_NAMES.items()}
_SEQUENCE_TAG = 0x30

E = TypeVar("E", bound=IntEnum)
A = TypeVar("A", bound=core.Asn1Value)
T = TypeVar("T")

# ---------------------------------------------------------------------------------------------- decoding


# The payload caches: a drill sends one payload to many devices (only the header differs), and the values
# are immutable, so the same octets decode to, and the same value encodes to, one shared result. Errors
# are not cached (lru_cache does not keep exceptions).
_PAYLOAD_CACHE = 64


def decode_command(octets: Octets) -> UpdateSecurityCredentials:
    return _decode_command(_octets_in(octets))


def decode_response(octets: Octets) -> UpdateSecurityCredentialsResponse:
    return _decode_response(_octets_in(octets))


def decode_alert(octets: Octets) -> UpdateSecurityCredentialsAlert:
    return _decode_alert(_octets_in(octets))


def _octets_in(octets: Octets) -> bytes:
    if not isinstance(octets, bytes | bytearray | memoryview):
        raise gbcs_error(INVALID_VALUE, "a payload is octets")
    return bytes(octets)  # hashable, for the caches


@lru_cache(maxsize=_PAYLOAD_CACHE)
def _decode_command(octets: bytes) -> UpdateSecurityCredentials:
    return _guarded(lambda: _command(asn1.UpdateSecurityCredentials.load(octets, strict=True)))


@lru_cache(maxsize=_PAYLOAD_CACHE)
def _decode_response(octets: bytes) -> UpdateSecurityCredentialsResponse:
    return _guarded(lambda: _response(asn1.UpdateSecurityCredentialsRsp.load(octets, strict=True)))


@lru_cache(maxsize=_PAYLOAD_CACHE)
def _decode_alert(octets: bytes) -> UpdateSecurityCredentialsAlert:
    return _guarded(lambda: _alert(asn1.UpdateSecurityCredentialsAlert.load(octets, strict=True)))


@lru_cache(maxsize=_PAYLOAD_CACHE)
def length_encoding_of(octets: bytes) -> LengthEncoding:
    """Which length style a device used: a long length in two octets where one would do gives it away.

    The constructed values are walked (responses and alerts hold no certificates) down to the deepest
    level a CS02b response has; the first ``82 00 xx`` decides. Without one, the styles read the same.
    """
    pending = [(octets, 0)]
    try:
        while pending:
            chunk, depth = pending.pop()
            pointer = 0
            while pointer < len(chunk):
                size = parser.peek(chunk[pointer:])
                _class, method, _tag, header, contents, _trailer = parser.parse(chunk[pointer:pointer + size])
                if _is_long_two(header):
                    return LengthEncoding.LONG_TWO_OCTETS
                if method == 1 and depth < _DEEPEST_RESPONSE_LEVEL:
                    pending.append((contents, depth + 1))
                pointer += size
    except ValueError:
        pass  # the structural decode reports the fault with its code
    return LengthEncoding.DER


# response > outcome > replacement outcomes > outcome > cell (or > changes > change > specialists >
# specialist): no CS02b response or alert nests deeper, and a hostile one is not walked further.
_DEEPEST_RESPONSE_LEVEL = 6


def _is_long_two(header: bytes) -> bool:
    return len(header) >= 4 and header[1] == 0x82 and header[2] == 0


def _guarded(convert: Callable[[], T]) -> T:
    try:
        return convert()
    except GbcsError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as error:
        raise gbcs_error(BAD_PAYLOAD, f"the payload is not a CS02b structure: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _enum(kind: type[E], value: int, code: str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise gbcs_error(code, f"{what} {value} is not one GBCS defines") from None


def _seq_number(value: core.Integer, what: str) -> int:
    number = int(value)
    if not 0 <= number <= MAX_SEQ_NUMBER:
        raise gbcs_error(OUT_OF_RANGE, f"{what} {number} is outside 0..2^64-1", what)
    return int(number)


def _small(value: core.Integer, what: str) -> int:
    number = int(value)  # not .native: an ENUMERATED's native is its name, and unknown values have none
    if not 0 <= number <= 0xFFFF:
        raise gbcs_error(OUT_OF_RANGE, f"{what} {number} is outside 0..65535", what)
    return int(number)


def _mode(value: core.Integer) -> CredentialsReplacementMode:
    return _enum(CredentialsReplacementMode, _small(value, "credentialsReplacementMode"), UNKNOWN_MODE,
                 "credentialsReplacementMode")


def _role(value: core.Integer) -> RemotePartyRole:
    return _enum(RemotePartyRole, _small(value, "remotePartyRole"), UNKNOWN_ROLE, "remote party role")


def _cell(value: asn1.TrustAnchorCellIdentifier) -> TrustAnchorCell:
    return _cell_from_contents(value.contents)


@lru_cache(maxsize=256)
def _cell_from_contents(contents: bytes) -> TrustAnchorCell:
    """A cell from its encoded contents (the same whether tagged [2] or not), cached: the same dozen cells
    recur in every message."""
    value = asn1.TrustAnchorCellIdentifier.load(parser.emit(0, 1, 16, contents), strict=True)
    bits = value["trust_anchor_cell_key_usage"].native
    usage = KeyUsage(0)
    for bit in bits:
        if bit not in _KEY_USAGE_BY_NAME:
            raise gbcs_error(UNSUPPORTED_KEY_USAGE, f"key usage bit {bit} is not one a trust anchor cell uses")
        usage |= _KEY_USAGE_BY_NAME[bit]
    if not usage:
        raise gbcs_error(UNSUPPORTED_KEY_USAGE, "a trust anchor cell's key usage names no bit")
    cell_usage = value["trust_anchor_cell_usage"]
    return TrustAnchorCell(
        role=_role(value["trust_anchor_cell_remote_party_role"]), key_usage=usage,
        cell_usage=CellUsage.MANAGEMENT if isinstance(cell_usage, core.Void)
        else _enum(CellUsage, _small(cell_usage, "trustAnchorCellUsage"), UNKNOWN_CELL_USAGE, "cell usage"))


def _specialists(values: asn1.SpecialistSeqNumbers) -> tuple[SpecialistSeqNumber, ...]:
    return tuple(SpecialistSeqNumber(
        usage=_enum(SeqNumberUsage, _small(item["seq_number_usage"], "seqNumberUsage"), OUT_OF_RANGE,
                    "seqNumberUsage"),
        seq_number=_seq_number(item["seq_number"], "seqNumber")) for item in values)


def _changes(values: asn1.RemotePartySeqNumberChanges) -> tuple[RemotePartySeqNumberChange, ...]:
    return tuple(RemotePartySeqNumberChange(
        role=_role(item["remote_party_role"]),
        floor_seq_number=_seq_number(item["floor_seq_number"], "floorSeqNumber"),
        specialist_floor_seq_numbers=_optional(item["specialist_floor_seq_number"], _specialists))
        for item in values)


def _optional(value: Any, convert: Callable[[Any], T]) -> T | None:
    return None if isinstance(value, core.Void) else convert(value)


def _certificate(value: core.Any) -> bytes:
    der: bytes = value.dump()
    if not der or der[0] != _SEQUENCE_TAG:
        raise gbcs_error(NOT_A_CERTIFICATE, "a certificate field does not hold a SEQUENCE")
    return der


def _control(value: asn1.AuthorisingRemotePartyControl) -> AuthorisingRemotePartyControl:
    return AuthorisingRemotePartyControl(
        mode=_mode(value["credentials_replacement_mode"]),
        seq_number=_seq_number(value["authorising_remote_party_seq_number"], "authorisingRemotePartySeqNumber"),
        plaintext_symmetric_key=_optional(value["plaintext_symmetric_key"], lambda key: bytes(key.native)),
        time_based_cpv_checks=_optional(value["apply_time_based_cpv_checks"], lambda flag: _enum(
            CpvTimeChecks, _small(flag, "applyTimeBasedCPVChecks"), OUT_OF_RANGE, "applyTimeBasedCPVChecks")),
        authorising_cell=_optional(value["authorising_remote_party_ta_cell_identifier"], _cell),
        new_floor_seq_number=_optional(value["new_remote_party_floor_seq_number"],
                                       lambda number: _seq_number(number, "newRemotePartyFloorSeqNumber")),
        new_specialist_floor_seq_numbers=_optional(value["new_remote_party_specialist_floor_seq_number"],
                                                   _specialists),
        other_seq_number_changes=_optional(value["other_remote_party_seq_number_changes"], _changes))


def _command(value: asn1.UpdateSecurityCredentials) -> UpdateSecurityCredentials:
    return UpdateSecurityCredentials(
        control=_control(value["authorising_remote_party_control"]),
        replacements=tuple(TrustAnchorReplacement(
            certificate=_certificate(item["replacement_certificate"]),
            target_cell=_cell(item["target_trust_anchor_cell_identifier"])) for item in value["replacements"]),
        certification_path=tuple(_certificate(item) for item in value["certification_path_certificates"]),
        execution_date_time=_optional(value["execution_date_time"], lambda time: time.native))


def _outcome(value: asn1.UpdateSecurityCredentialsExecutionOutcome) -> ExecutionOutcome:
    return ExecutionOutcome(
        seq_number=_seq_number(value["authorising_remote_party_seq_number"], "authorisingRemotePartySeqNumber"),
        mode=_mode(value["credentials_replacement_mode"]),
        seq_number_changes=_changes(value["remote_party_seq_number_changes"]),
        outcomes=tuple(ReplacementOutcome(
            cell=_cell(item["affected_trust_anchor_cell"]),
            status=_enum(StatusCode, _small(item["status_code"], "statusCode"), UNKNOWN_STATUS, "status code"),
            existing_subject_id=item["existing_subject_unique_id"].native,
            existing_subject_key_id=item["existing_subject_key_identifier"].native,
            replacing_subject_id=item["replacing_subject_unique_id"].native,
            replacing_subject_key_id=item["replacing_subject_key_identifier"].native)
            for item in value["replacement_outcomes"]))


def _response(value: asn1.UpdateSecurityCredentialsRsp) -> UpdateSecurityCredentialsResponse:
    return UpdateSecurityCredentialsResponse(outcome=_optional(value["execution_outcome"], _outcome))


def _alert(value: asn1.UpdateSecurityCredentialsAlert) -> UpdateSecurityCredentialsAlert:
    return UpdateSecurityCredentialsAlert(alert_code=_small(value["alert_code"], "alertCode"),
                                          execution_date_time=value["execution_date_time"].native,
                                          outcome=_outcome(value["execution_outcome"]))

# ---------------------------------------------------------------------------------------------- encoding


def encode_payload(payload: Payload, length_encoding: LengthEncoding = LengthEncoding.DER) -> bytes:
    """The payload's octets; a value that cannot be encoded is a GB:E021 GbcsError."""
    global _last_encoded
    last = _last_encoded   # one read of an immutable tuple: safe with threads
    if last is not None and last[0] is payload and last[1] is length_encoding:
        # The very same (immutable) value again, as when one command is signed and then encoded: hashing a
        # payload of certificates for the cache below costs more than this check.
        return last[2]
    try:
        octets = _encode_cached(payload, length_encoding)
    except TypeError:  # a value holding something unhashable (a list for a tuple): encode it uncached
        return _encode(payload, length_encoding)
    _last_encoded = (payload, length_encoding, octets)   # held, so that its id cannot be reused meanwhile
    return octets


_last_encoded: tuple[Payload, LengthEncoding, bytes] | None = None


@lru_cache(maxsize=_PAYLOAD_CACHE)
def _encode_cached(payload: Payload, length_encoding: LengthEncoding) -> bytes:
    return _encode(payload, length_encoding)


def _encode(payload: Payload, length_encoding: LengthEncoding) -> bytes:
    try:
        if isinstance(payload, UpdateSecurityCredentials):
            der = _command_asn1(payload).dump()
        elif isinstance(payload, UpdateSecurityCredentialsResponse):
            der = asn1.UpdateSecurityCredentialsRsp({
                "command_accepted": core.Null(),
                "execution_outcome": None if payload.outcome is None else _outcome_asn1(payload.outcome)}).dump()
        elif isinstance(payload, UpdateSecurityCredentialsAlert):
            _check_range(payload.alert_code, 0xFFFF, "alertCode")
            der = asn1.UpdateSecurityCredentialsAlert({
                "alert_code": payload.alert_code,
                "execution_date_time": _time(payload.execution_date_time, "executionDateTime"),
                "execution_outcome": _outcome_asn1(payload.outcome)}).dump()
        else:
            raise gbcs_error(INVALID_VALUE, f"{type(payload).__name__} is not a CS02b payload")
    except GbcsError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        raise gbcs_error(INVALID_VALUE, f"the payload cannot be encoded: {_first_line(error)}") from None
    if length_encoding is LengthEncoding.LONG_TWO_OCTETS:
        return _long_two_octets(der)
    return der


def _settled(value: A) -> A:
    """The value re-read from its own DER: asn1crypto keeps a built value 'mutated' for good, and then
    re-encodes it (and everything under it) each time a parent asks for its contents, which makes a
    nested encode quadratic. A re-read value hands its octets over as they are."""
    return type(value).load(value.dump())


def _check_range(number: int, maximum: int, what: str) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= maximum:
        raise gbcs_error(INVALID_VALUE, f"{what} must be an integer in 0..{maximum}, not {number!r}", what)
    return number


def _seq(number: int, what: str) -> int:
    return _check_range(number, MAX_SEQ_NUMBER, what)


def _member(value: Any, kind: type[E], what: str) -> int:
    if not isinstance(value, kind):
        raise gbcs_error(INVALID_VALUE, f"{what} must be a {kind.__name__}, not {value!r}", what)
    return int(value)


def _time(value: datetime, what: str) -> core.GeneralizedTime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise gbcs_error(INVALID_VALUE, f"{what} must be a timezone-aware datetime", what)
    return core.GeneralizedTime(value)


def _cell_asn1(cell: TrustAnchorCell) -> asn1.TrustAnchorCellIdentifier:
    if not isinstance(cell, TrustAnchorCell):
        raise gbcs_error(INVALID_VALUE, f"{cell!r} is not a trust anchor cell")
    return asn1.TrustAnchorCellIdentifier.load(_cell_der(cell))


@lru_cache(maxsize=256)
def _cell_der(cell: TrustAnchorCell) -> bytes:
    """A cell's DER, cached: a device has a dozen cells, and every message names some of them."""
    if not isinstance(cell, TrustAnchorCell) or not isinstance(cell.key_usage, KeyUsage) or not cell.key_usage:
        raise gbcs_error(INVALID_VALUE, f"{cell!r} is not a trust anchor cell with a key usage")
    usage = _member(cell.cell_usage, CellUsage, "cell usage")
    return asn1.TrustAnchorCellIdentifier({
        "trust_anchor_cell_remote_party_role": _member(cell.role, RemotePartyRole, "role"),
        "trust_anchor_cell_key_usage": {name for bit, name in _KEY_USAGE_NAMES.items() if bit in cell.key_usage},
        # DEFAULT management: DER leaves the default out
        "trust_anchor_cell_usage": None if usage == CellUsage.MANAGEMENT else usage}).dump()


def _specialists_asn1(values: Iterable[SpecialistSeqNumber]) -> asn1.SpecialistSeqNumbers:
    return _settled(asn1.SpecialistSeqNumbers([
        {"seq_number_usage": _member(item.usage, SeqNumberUsage, "seqNumberUsage"),
         "seq_number": _seq(item.seq_number, "seqNumber")} for item in values]))


def _changes_asn1(values: Iterable[RemotePartySeqNumberChange]) -> asn1.RemotePartySeqNumberChanges:
    return _settled(asn1.RemotePartySeqNumberChanges([_settled(asn1.RemotePartySeqNumberChange({
        "remote_party_role": _member(item.role, RemotePartyRole, "role"),
        "floor_seq_number": _seq(item.floor_seq_number, "floorSeqNumber"),
        "specialist_floor_seq_number": None if item.specialist_floor_seq_numbers is None
        else _specialists_asn1(item.specialist_floor_seq_numbers)})) for item in values]))


def _certificate_asn1(der: bytes) -> core.Any:
    if not isinstance(der, bytes) or not der or der[0] != _SEQUENCE_TAG:
        raise gbcs_error(NOT_A_CERTIFICATE, "a certificate to encode must be DER octets (a SEQUENCE)")
    try:
        return core.Any.load(der, strict=True)
    except ValueError:
        raise gbcs_error(NOT_A_CERTIFICATE, "a certificate to encode is not one whole DER value") from None


def _command_asn1(command: UpdateSecurityCredentials) -> asn1.UpdateSecurityCredentials:
    control = command.control
    key = control.plaintext_symmetric_key
    if key is not None and not isinstance(key, bytes):
        raise gbcs_error(INVALID_VALUE, "plaintextSymmetricKey must be octets")
    return asn1.UpdateSecurityCredentials({
        "authorising_remote_party_control": {
            "credentials_replacement_mode": _member(control.mode, CredentialsReplacementMode, "mode"),
            "plaintext_symmetric_key": key,
            "apply_time_based_cpv_checks": None if control.time_based_cpv_checks is None
            else _member(control.time_based_cpv_checks, CpvTimeChecks, "applyTimeBasedCPVChecks"),
            "authorising_remote_party_ta_cell_identifier": None if control.authorising_cell is None
            else _cell_asn1(control.authorising_cell),
            "authorising_remote_party_seq_number": _seq(control.seq_number, "authorisingRemotePartySeqNumber"),
            "new_remote_party_floor_seq_number": None if control.new_floor_seq_number is None
            else _seq(control.new_floor_seq_number, "newRemotePartyFloorSeqNumber"),
            "new_remote_party_specialist_floor_seq_number": None if control.new_specialist_floor_seq_numbers is None
            else _specialists_asn1(control.new_specialist_floor_seq_numbers),
            "other_remote_party_seq_number_changes": None if control.other_seq_number_changes is None
            else _changes_asn1(control.other_seq_number_changes)},
        "replacements": _settled(asn1.TrustAnchorReplacements([
            asn1.TrustAnchorReplacement.load(_item_der(item, _replacement_asn1)) for item in command.replacements])),
        "certification_path_certificates": [_certificate_asn1(der) for der in command.certification_path],
        "execution_date_time": None if command.execution_date_time is None
        else _time(command.execution_date_time, "executionDateTime")})


def _octets(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise gbcs_error(INVALID_VALUE, f"{what} must be octets", what)
    return value


def _outcome_asn1(outcome: ExecutionOutcome) -> asn1.UpdateSecurityCredentialsExecutionOutcome:
    return asn1.UpdateSecurityCredentialsExecutionOutcome({
        "authorising_remote_party_seq_number": _seq(outcome.seq_number, "authorisingRemotePartySeqNumber"),
        "credentials_replacement_mode": _member(outcome.mode, CredentialsReplacementMode, "mode"),
        "remote_party_seq_number_changes": _changes_asn1(outcome.seq_number_changes),
        "replacement_outcomes": _settled(asn1.ReplacementOutcomes([
            asn1.ReplacementOutcome.load(_item_der(item, _replacement_outcome_asn1)) for item in outcome.outcomes]))})


def _item_der(item: T, build: Callable[[T], core.Asn1Value]) -> bytes:
    """One list item's DER, cached by value where it can be: a drill's devices report the same cells
    replaced by the same certificates, so most items recur."""
    try:
        return _cached_item_der(item, build)
    except TypeError:  # an unhashable value (a list where a tuple belongs): encode it uncached
        return bytes(build(item).dump())


@lru_cache(maxsize=1024)
def _cached_item_der(item: Any, build: Callable[[Any], core.Asn1Value]) -> bytes:
    return bytes(build(item).dump())


def _replacement_asn1(item: TrustAnchorReplacement) -> asn1.TrustAnchorReplacement:
    if not isinstance(item, TrustAnchorReplacement):
        raise gbcs_error(INVALID_VALUE, f"{item!r} is not a TrustAnchorReplacement")
    return asn1.TrustAnchorReplacement({"replacement_certificate": _certificate_asn1(item.certificate),
                                        "target_trust_anchor_cell_identifier": _cell_asn1(item.target_cell)})


def _replacement_outcome_asn1(item: ReplacementOutcome) -> asn1.ReplacementOutcome:
    if not isinstance(item, ReplacementOutcome):
        raise gbcs_error(INVALID_VALUE, f"{item!r} is not a ReplacementOutcome")
    return asn1.ReplacementOutcome({
        "affected_trust_anchor_cell": _cell_asn1(item.cell),
        "status_code": _member(item.status, StatusCode, "statusCode"),
        "existing_subject_unique_id": _octets(item.existing_subject_id, "existingSubjectUniqueID"),
        "existing_subject_key_identifier": _octets(item.existing_subject_key_id, "existingSubjectKeyIdentifier"),
        "replacing_subject_unique_id": _octets(item.replacing_subject_id, "replacingSubjectUniqueID"),
        "replacing_subject_key_identifier": _octets(item.replacing_subject_key_id, "replacingSubjectKeyIdentifier")})


def _long_two_octets(der: bytes) -> bytes:
    """Rewrite every long length of a DER payload with two octets, as the RTDS devices write them.

    Only responses and alerts take this form, and they hold no certificates, so every constructed value
    is walked.
    """
    out = bytearray()
    _rewrite(der, out)
    return bytes(out)


def _rewrite(octets: bytes, out: bytearray) -> None:
    pointer = 0
    while pointer < len(octets):
        size = parser.peek(octets[pointer:])
        _class, method, _tag, header, contents, _trailer = parser.parse(octets[pointer:pointer + size])
        pointer += size
        tag_octets = header[:1]  # CS02b uses low tag numbers only: one identifier octet
        body = bytearray()
        if method == 1:
            _rewrite(contents, body)
        else:
            body += contents
        out += tag_octets
        length = len(body)
        if length < 0x80:
            out.append(length)
        else:
            if length > 0xFFFF:
                raise gbcs_error(INVALID_VALUE, "a payload value is too long for two length octets")
            out += bytes((0x82, length >> 8, length & 0xFF))
        out += body
