"""One entry point for any CS02b message on the wire: General Ciphering (DD) or General Signing (DF)."""

from __future__ import annotations

from smki.gbcs.ciphering import decode_general_ciphering, encode_general_ciphering, general_ciphering_from_frame
from smki.gbcs.errors import INVALID_VALUE, TRUNCATED, UNKNOWN_APDU, gbcs_error
from smki.gbcs.framing import (
    GENERAL_CIPHERING_TAG,
    GENERAL_SIGNING_TAG,
    SigningFrame,
    read_ciphering_frame,
)
from smki.gbcs.signing import apdu_from_frame, decode_general_signing, encode_general_signing, read_whole_signing_frame
from smki.gbcs.values import GeneralCiphering, GeneralSigning, Message


def decode(octets: bytes) -> Message:
    """The message in ``octets``, or a GbcsError naming what is wrong; nothing else escapes."""
    _check_octets(octets)
    if octets[0] == GENERAL_CIPHERING_TAG:
        return decode_general_ciphering(bytes(octets))
    if octets[0] == GENERAL_SIGNING_TAG:
        return decode_general_signing(bytes(octets))
    raise gbcs_error(UNKNOWN_APDU, f"a CS02b message starts DD or DF, not {octets[0]:02X}")


def decode_framed(octets: bytes) -> tuple[Message, SigningFrame]:
    """``decode(octets)``, with the frame of its General Signing APDU (inside the General Ciphering one, when
    wrapped): the offsets into ``octets`` that :func:`smki.gbcs.signing.verify_frame_signature` checks the
    signature over, so that a receiver reads the frame once."""
    _check_octets(octets)
    octets = bytes(octets)
    if octets[0] == GENERAL_CIPHERING_TAG:
        ciphering = read_ciphering_frame(octets)
        return general_ciphering_from_frame(octets, ciphering), ciphering.inner
    if octets[0] == GENERAL_SIGNING_TAG:
        frame = read_whole_signing_frame(octets)
        return apdu_from_frame(octets, frame), frame
    raise gbcs_error(UNKNOWN_APDU, f"a CS02b message starts DD or DF, not {octets[0]:02X}")


def _check_octets(octets: object) -> None:
    if not isinstance(octets, bytes | bytearray | memoryview):
        raise gbcs_error(INVALID_VALUE, "a GBCS message is octets")
    if not octets:
        raise gbcs_error(TRUNCATED, "the message is empty")


def encode(message: Message) -> bytes:
    if isinstance(message, GeneralCiphering):
        return encode_general_ciphering(message)
    if isinstance(message, GeneralSigning):
        return encode_general_signing(message)
    raise gbcs_error(INVALID_VALUE, f"{type(message).__name__} is not a GBCS message")
