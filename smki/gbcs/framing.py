"""The GBCS octet framing around the ASN.1 payload: lengths, and the General Signing APDU's fields.

GBCS frames its APDUs with DLMS-style length-prefixed octet strings, not ASN.1, so this small reader is
the codec's own; the payload inside is left to asn1crypto. Reading a frame finds the spans (what is
signed, where the payload is) without decoding the payload, so a signature can be checked on the
octets as received.
"""

from __future__ import annotations

from dataclasses import dataclass

from smki.core.eui64 import Eui64
from smki.gbcs.errors import (
    BAD_LENGTH,
    INVALID_VALUE,
    TRAILING_OCTETS,
    TRUNCATED,
    UNKNOWN_APDU,
    UNKNOWN_CRA_FLAG,
    UNSUPPORTED_CIPHERING,
    WRONG_FIELD_LENGTH,
    gbcs_error,
)
from smki.gbcs.values import CraFlag, GroupingHeader

GENERAL_SIGNING_TAG = 0xDF
GENERAL_CIPHERING_TAG = 0xDD
TRANSACTION_ID_LENGTH = 9  # CRA flag + 8-octet originator counter
EUI_LENGTH = 8
DATE_TIME_LENGTH = 12  # DLMS date-time
MESSAGE_CODE_LENGTH = 2
SIGNATURE_LENGTH = 64  # ECDSA P-256 r || s
MAX_COUNTER = (1 << 64) - 1
# Three length octets reach 16 MiB, far past any CS02b message; more is refused rather than allocated.
MAX_LENGTH_OCTETS = 3


def read_length(buffer: bytes, pointer: int, end: int, what: str) -> tuple[int, int]:
    """A DER length at ``pointer``: (length, pointer after it). Minimal forms only."""
    if pointer >= end:
        raise gbcs_error(TRUNCATED, f"the message ends before the {what} length", what)
    first = buffer[pointer]
    if first < 0x80:
        return first, pointer + 1
    count = first & 0x7F
    if count == 0 or count > MAX_LENGTH_OCTETS:
        raise gbcs_error(BAD_LENGTH, f"the {what} length form {first:02X} is not one GBCS uses", what)
    if pointer + 1 + count > end:
        raise gbcs_error(TRUNCATED, f"the message ends inside the {what} length", what)
    length = int.from_bytes(buffer[pointer + 1:pointer + 1 + count], "big")
    if length < 0x80 or length >> (8 * (count - 1)) == 0:
        raise gbcs_error(BAD_LENGTH, f"the {what} length {length} is not written in its shortest form", what)
    return length, pointer + 1 + count


def write_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > MAX_LENGTH_OCTETS:
        raise gbcs_error(INVALID_VALUE, f"a length of {length} octets is more than a GBCS message holds")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


@dataclass(frozen=True, slots=True)
class SigningFrame:
    """Where things are in a General Signing APDU: offsets into the buffer it was read from."""

    header: GroupingHeader
    start: int  # the DF tag
    payload_start: int
    payload_end: int  # also the end of what the signature covers
    signature: bytes | None
    has_signature_field: bool
    end: int


def _fixed(buffer: bytes, pointer: int, end: int, size: int, what: str) -> tuple[bytes, int]:
    length, pointer = read_length(buffer, pointer, end, what)
    if length != size:
        raise gbcs_error(WRONG_FIELD_LENGTH, f"the {what} is {length} octets, not {size}", what)
    if pointer + size > end:
        raise gbcs_error(TRUNCATED, f"the message ends inside the {what}", what)
    return buffer[pointer:pointer + size], pointer + size


_CRA_FLAGS = {int(flag): flag for flag in CraFlag}


def read_signing_frame(buffer: bytes, start: int, end: int) -> SigningFrame:
    """Read the General Signing APDU in ``buffer[start:end]``; it must fill the span exactly."""
    return _read_regular_frame(buffer, start, end) or _read_signing_frame(buffer, start, end)


# The header of an APDU as every CS02b message lays it out: DF, then 09 and the transaction ID (CRA flag and
# counter), 08 and the business originator, 08 and the business target, the date-time's length (00 or 0C).
_REGULAR_HEADER = 1 + 1 + TRANSACTION_ID_LENGTH + 1 + EUI_LENGTH + 1 + EUI_LENGTH + 1


def _read_regular_frame(buffer: bytes, start: int, end: int) -> SigningFrame | None:
    """:func:`read_signing_frame` for a well-formed APDU, read with a few index checks in place of the general
    reader's dozen calls (a device and a sender read one for every message of a million); None for anything
    else, which the general reader then reads or refuses with its coded error. It accepts only what the general
    reader accepts, and gives the same frame (tests/gbcs/test_properties.py holds the two readers together)."""
    p = start + _REGULAR_HEADER
    if p > end or buffer[start] != GENERAL_SIGNING_TAG or buffer[start + 1] != TRANSACTION_ID_LENGTH \
            or buffer[start + 11] != EUI_LENGTH or buffer[start + 20] != EUI_LENGTH:
        return None
    cra_flag = _CRA_FLAGS.get(buffer[start + 2])
    date_time_length = buffer[p - 1]
    if cra_flag is None or (date_time_length != 0 and date_time_length != DATE_TIME_LENGTH):
        return None
    date_time = buffer[p:p + date_time_length] if date_time_length else None
    p += date_time_length
    if p + 4 > end or buffer[p] != MESSAGE_CODE_LENGTH:
        return None
    message_code = (buffer[p + 1] << 8) | buffer[p + 2]
    first = buffer[p + 3]
    if first < 0x80:
        payload_length, payload_start = first, p + 4
    elif first == 0x81 and p + 5 <= end and buffer[p + 4] >= 0x80:
        payload_length, payload_start = buffer[p + 4], p + 5
    elif first == 0x82 and p + 6 <= end and buffer[p + 4] != 0:
        payload_length, payload_start = (buffer[p + 4] << 8) | buffer[p + 5], p + 6
    else:
        return None
    payload_end = payload_start + payload_length
    signature: bytes | None = None
    if payload_end == end:
        pointer = end
    elif payload_end < end and buffer[payload_end] == 0:
        pointer = payload_end + 1
    elif payload_end < end and buffer[payload_end] == SIGNATURE_LENGTH and payload_end + 1 + SIGNATURE_LENGTH <= end:
        signature = buffer[payload_end + 1:payload_end + 1 + SIGNATURE_LENGTH]
        pointer = payload_end + 1 + SIGNATURE_LENGTH
    else:
        return None
    header = GroupingHeader(cra_flag=cra_flag, originator_counter=int.from_bytes(buffer[start + 3:start + 11], "big"),
                            business_originator=Eui64(bytes(buffer[start + 12:start + 20])),
                            business_target=Eui64(bytes(buffer[start + 21:start + 29])), message_code=message_code,
                            date_time=date_time)
    return SigningFrame(header=header, start=start, payload_start=payload_start, payload_end=payload_end,
                        signature=signature, has_signature_field=payload_end < end, end=pointer)


def _read_signing_frame(buffer: bytes, start: int, end: int) -> SigningFrame:
    if start >= end:
        raise gbcs_error(TRUNCATED, "the message is empty")
    if buffer[start] != GENERAL_SIGNING_TAG:
        raise gbcs_error(UNKNOWN_APDU, f"a General Signing APDU starts DF, not {buffer[start]:02X}")
    transaction_id, pointer = _fixed(buffer, start + 1, end, TRANSACTION_ID_LENGTH, "transaction ID")
    cra_flag = _CRA_FLAGS.get(transaction_id[0])   # a dict, not CraFlag(n): every message of a million is read
    if cra_flag is None:
        raise gbcs_error(UNKNOWN_CRA_FLAG, f"CRA flag {transaction_id[0]:02X} is not 01, 02 or 03")
    originator, pointer = _fixed(buffer, pointer, end, EUI_LENGTH, "business originator ID")
    target, pointer = _fixed(buffer, pointer, end, EUI_LENGTH, "business target ID")
    date_time_length, pointer = read_length(buffer, pointer, end, "date-time")
    if date_time_length not in (0, DATE_TIME_LENGTH):
        raise gbcs_error(WRONG_FIELD_LENGTH, f"the date-time is {date_time_length} octets, not 0 or 12",
                         "date-time")
    if pointer + date_time_length > end:
        raise gbcs_error(TRUNCATED, "the message ends inside the date-time", "date-time")
    date_time = buffer[pointer:pointer + date_time_length] if date_time_length else None
    pointer += date_time_length
    message_code, pointer = _fixed(buffer, pointer, end, MESSAGE_CODE_LENGTH, "other information")
    payload_length, payload_start = read_length(buffer, pointer, end, "payload")
    payload_end = payload_start + payload_length
    if payload_end > end:
        raise gbcs_error(TRUNCATED, f"the payload announces {payload_length} octets; "
                         f"{end - payload_start} follow", "payload")
    signature: bytes | None = None
    has_field = payload_end < end
    pointer = payload_end
    if has_field:
        signature_length, pointer = read_length(buffer, payload_end, end, "signature")
        if signature_length not in (0, SIGNATURE_LENGTH):
            raise gbcs_error(WRONG_FIELD_LENGTH, f"the signature is {signature_length} octets, not 0 or 64",
                             "signature")
        if pointer + signature_length > end:
            raise gbcs_error(TRUNCATED, "the message ends inside the signature", "signature")
        if signature_length:
            signature = buffer[pointer:pointer + signature_length]
        pointer += signature_length
    header = GroupingHeader(cra_flag=cra_flag, originator_counter=int.from_bytes(transaction_id[1:], "big"),
                            business_originator=Eui64(bytes(originator)), business_target=Eui64(bytes(target)),
                            message_code=int.from_bytes(message_code, "big"), date_time=date_time)
    return SigningFrame(header=header, start=start, payload_start=payload_start, payload_end=payload_end,
                        signature=signature, has_signature_field=has_field, end=pointer)


def header_octets(header: GroupingHeader) -> bytes:
    """Everything of a General Signing APDU before the payload length, from the CRA flag on (no DF)."""
    if not isinstance(header, GroupingHeader):
        raise gbcs_error(INVALID_VALUE, "a General Signing APDU needs a GroupingHeader")
    if not isinstance(header.cra_flag, CraFlag):
        raise gbcs_error(INVALID_VALUE, f"CRA flag {header.cra_flag!r} is not a CraFlag", "cra_flag")
    counter = header.originator_counter
    if isinstance(counter, bool) or not isinstance(counter, int) or not 0 <= counter <= MAX_COUNTER:
        raise gbcs_error(INVALID_VALUE, f"originator counter {counter!r} is not in 0..2^64-1", "originator_counter")
    code = header.message_code
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
        raise gbcs_error(INVALID_VALUE, f"message code {code!r} is not in 0..0xFFFF", "message_code")
    for what, eui in (("business_originator", header.business_originator),
                      ("business_target", header.business_target)):
        if not isinstance(eui, Eui64):
            raise gbcs_error(INVALID_VALUE, f"{what} must be an Eui64", what)
    date_time = header.date_time
    if date_time is not None and (not isinstance(date_time, bytes) or len(date_time) != DATE_TIME_LENGTH):
        raise gbcs_error(INVALID_VALUE, "a date-time is 12 octets of DLMS date-time", "date_time")
    return b"".join((
        bytes((TRANSACTION_ID_LENGTH, header.cra_flag)), counter.to_bytes(8, "big"),
        bytes((EUI_LENGTH,)), header.business_originator.value,
        bytes((EUI_LENGTH,)), header.business_target.value,
        bytes((len(date_time),)) + date_time if date_time else b"\x00",
        bytes((MESSAGE_CODE_LENGTH,)), code.to_bytes(2, "big")))


# The General Ciphering header CS02b uses: empty transaction ID, system titles, date-time and other
# information, and no key information; the ACB's MAC alone protects the content.
CIPHERING_HEADER = bytes((GENERAL_CIPHERING_TAG, 0, 0, 0, 0, 0, 0))
SECURITY_CONTROL_MAC_ONLY = 0x11
SECURITY_HEADER_LENGTH = 5  # security control + 4-octet invocation counter
MAC_LENGTH = 12


@dataclass(frozen=True, slots=True)
class CipheringFrame:
    invocation_counter: int
    content_start: int  # the security header
    inner: SigningFrame
    mac: bytes
    end: int


def read_ciphering_frame(buffer: bytes) -> CipheringFrame:
    end = len(buffer)
    if buffer[:1] != CIPHERING_HEADER[:1]:
        raise gbcs_error(UNKNOWN_APDU, "a General Ciphering APDU starts DD")
    if end < len(CIPHERING_HEADER):
        raise gbcs_error(TRUNCATED, "the message ends inside the General Ciphering header")
    if buffer[:len(CIPHERING_HEADER)] != CIPHERING_HEADER:
        raise gbcs_error(UNSUPPORTED_CIPHERING, "the General Ciphering header fields are not all empty")
    length, content_start = read_length(buffer, len(CIPHERING_HEADER), end, "ciphered content")
    content_end = content_start + length
    if content_end > end:
        raise gbcs_error(TRUNCATED, f"the ciphered content announces {length} octets; {end - content_start} follow")
    if content_end < end:
        raise gbcs_error(TRAILING_OCTETS, f"{end - content_end} octets follow the General Ciphering APDU")
    if length < SECURITY_HEADER_LENGTH + MAC_LENGTH:
        raise gbcs_error(TRUNCATED, "the ciphered content is too short for a security header and a MAC")
    if buffer[content_start] != SECURITY_CONTROL_MAC_ONLY:
        raise gbcs_error(UNSUPPORTED_CIPHERING,
                         f"security control {buffer[content_start]:02X} is not 11 (authentication only)")
    inner_start = content_start + SECURITY_HEADER_LENGTH
    inner_end = content_end - MAC_LENGTH
    inner = read_signing_frame(buffer, inner_start, inner_end)
    if inner.end != inner_end:
        raise gbcs_error(TRAILING_OCTETS, f"{inner_end - inner.end} octets follow the General Signing APDU "
                         "inside the General Ciphering one")
    return CipheringFrame(invocation_counter=int.from_bytes(buffer[content_start + 1:inner_start], "big"),
                          content_start=content_start, inner=inner, mac=buffer[inner_end:content_end],
                          end=content_end)


def locate_signing_frame(buffer: bytes) -> SigningFrame:
    """The General Signing APDU in a message, unwrapping General Ciphering when present."""
    if buffer[:1] == CIPHERING_HEADER[:1]:
        return read_ciphering_frame(buffer).inner
    frame = read_signing_frame(buffer, 0, len(buffer))
    if frame.end != len(buffer):
        raise gbcs_error(TRAILING_OCTETS, f"{len(buffer) - frame.end} octets follow the General Signing APDU")
    return frame
