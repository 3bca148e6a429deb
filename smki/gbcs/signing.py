"""The General Signing APDU: CS02b header + payload + the originator's ECDSA P-256 signature.

The signature is over everything after the DF tag up to the end of the payload, written as r || s
(32 + 32 octets). A pre-command is the APDU before signing: no signature field at all.
"""

from __future__ import annotations

from dataclasses import replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from smki.gbcs.errors import (
    CODE_MODE_MISMATCH,
    INVALID_VALUE,
    NOT_CS02B,
    NOT_SIGNED,
    SIGNATURE_INVALID,
    TRAILING_OCTETS,
    UNSUITABLE_KEY,
    gbcs_error,
)
from smki.gbcs.framing import (
    GENERAL_SIGNING_TAG,
    SIGNATURE_LENGTH,
    SigningFrame,
    header_octets,
    locate_signing_frame,
    read_signing_frame,
    write_length,
)
from smki.gbcs.payload import decode_alert, decode_command, decode_response, encode_payload, length_encoding_of
from smki.gbcs.values import (
    CS02B_ALERT_MESSAGE_CODE,
    CS02B_MESSAGE_CODE_BASE,
    CraFlag,
    CredentialsReplacementMode,
    GeneralCiphering,
    GeneralSigning,
    GroupingHeader,
    LengthEncoding,
    Payload,
    UpdateSecurityCredentials,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)

_COORDINATE = 32
_ECDSA = ec.ECDSA(hashes.SHA256())


def decode_general_signing(octets: bytes) -> GeneralSigning:
    """A whole General Signing APDU (command, pre-command, response or alert)."""
    octets = bytes(octets)
    return apdu_from_frame(octets, read_whole_signing_frame(octets))


def read_whole_signing_frame(octets: bytes) -> SigningFrame:
    """The frame of the General Signing APDU that ``octets`` hold, with nothing after it."""
    frame = read_signing_frame(octets, 0, len(octets))
    if frame.end != len(octets):
        raise gbcs_error(TRAILING_OCTETS, f"{len(octets) - frame.end} octets follow the General Signing APDU")
    return frame


def apdu_from_frame(octets: bytes, frame: SigningFrame) -> GeneralSigning:
    header = frame.header
    payload_octets = octets[frame.payload_start:frame.payload_end]
    payload: Payload
    encoding = LengthEncoding.DER
    if header.cra_flag is CraFlag.ALERT:
        if header.message_code != CS02B_ALERT_MESSAGE_CODE:
            raise gbcs_error(NOT_CS02B, f"alert message code {header.message_code:04X} is not 00CB")
        payload = decode_alert(payload_octets)
        encoding = length_encoding_of(payload_octets)
    else:
        mode = _mode_of(header.message_code)
        if header.cra_flag is CraFlag.COMMAND:
            payload = decode_command(payload_octets)
            payload_mode: CredentialsReplacementMode | None = payload.mode
        else:
            payload = decode_response(payload_octets)
            payload_mode = None if payload.outcome is None else payload.outcome.mode
            encoding = length_encoding_of(payload_octets)
        if payload_mode is not None and payload_mode is not mode:
            raise gbcs_error(CODE_MODE_MISMATCH, f"message code {header.message_code:04X} is mode {mode.value}; "
                             f"the payload says mode {payload_mode.value}")
    return GeneralSigning(header=header, payload=payload, signature=frame.signature,
                          pre_command=not frame.has_signature_field, length_encoding=encoding)


_MODES = {int(mode): mode for mode in CredentialsReplacementMode}


def _mode_of(message_code: int) -> CredentialsReplacementMode:
    mode = _MODES.get(message_code - CS02B_MESSAGE_CODE_BASE)
    if mode is None:
        raise gbcs_error(NOT_CS02B, f"message code {message_code:04X} is not a CS02b one (0100..0109)")
    return mode


def to_be_signed(apdu: GeneralSigning) -> bytes:
    """The octets the originator signs: after the DF tag, up to the end of the payload."""
    _check_kind(apdu)
    payload = encode_payload(apdu.payload, apdu.length_encoding)
    return header_octets(apdu.header) + write_length(len(payload)) + payload


def encode_general_signing(apdu: GeneralSigning) -> bytes:
    if not isinstance(apdu, GeneralSigning):
        raise gbcs_error(INVALID_VALUE, f"{type(apdu).__name__} is not a GeneralSigning APDU")
    signature = apdu.signature
    if apdu.pre_command:
        if signature is not None:
            raise gbcs_error(INVALID_VALUE, "a pre-command carries no signature", "signature")
        trailer = b""
    elif signature is None:
        trailer = b"\x00"
    elif isinstance(signature, bytes) and len(signature) == SIGNATURE_LENGTH:
        trailer = bytes((SIGNATURE_LENGTH,)) + signature
    else:
        raise gbcs_error(INVALID_VALUE, "a signature is 64 octets (r || s)", "signature")
    return bytes((GENERAL_SIGNING_TAG,)) + to_be_signed(apdu) + trailer


def _check_kind(apdu: GeneralSigning) -> None:
    """The CRA flag, the message code and the payload must agree, or the APDU would not decode again."""
    if not isinstance(apdu, GeneralSigning):
        raise gbcs_error(INVALID_VALUE, f"{type(apdu).__name__} is not a GeneralSigning APDU")
    header, payload = apdu.header, apdu.payload
    expected = {CraFlag.COMMAND: UpdateSecurityCredentials, CraFlag.RESPONSE: UpdateSecurityCredentialsResponse,
                CraFlag.ALERT: UpdateSecurityCredentialsAlert}.get(header.cra_flag)
    if expected is None or not isinstance(payload, expected):
        raise gbcs_error(CODE_MODE_MISMATCH, f"a {header.cra_flag!r} carries a {type(payload).__name__}")
    if isinstance(payload, UpdateSecurityCredentialsAlert):
        if header.message_code != CS02B_ALERT_MESSAGE_CODE:
            raise gbcs_error(CODE_MODE_MISMATCH, "an alert's message code is 00CB")
        return
    mode = payload.mode if isinstance(payload, UpdateSecurityCredentials) else (
        None if payload.outcome is None else payload.outcome.mode)
    code_mode = _mode_of(header.message_code)
    if mode is not None and mode is not code_mode:
        raise gbcs_error(CODE_MODE_MISMATCH, f"message code {header.message_code:04X} disagrees with mode {mode!r}")
    if isinstance(payload, UpdateSecurityCredentials) and apdu.length_encoding is not LengthEncoding.DER:
        raise gbcs_error(INVALID_VALUE, "a command's payload is DER")


def sign(apdu: GeneralSigning, private_key: ec.EllipticCurvePrivateKey) -> GeneralSigning:
    """The APDU signed by its originator's Digital Signing key (a pre-command becomes a command)."""
    _check_p256(private_key, ec.EllipticCurvePrivateKey, "signing key")
    der = private_key.sign(to_be_signed(apdu), _ECDSA)
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
    return replace(apdu, signature=signature, pre_command=False)


def sign_and_encode(apdu: GeneralSigning, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """``encode(sign(apdu, private_key))``, encoding the APDU once rather than twice (what a sender of a million
    commands, or a device answering them, does per message)."""
    _check_p256(private_key, ec.EllipticCurvePrivateKey, "signing key")
    signed = to_be_signed(apdu)
    r, s = decode_dss_signature(private_key.sign(signed, _ECDSA))
    return (bytes((GENERAL_SIGNING_TAG,)) + signed + bytes((SIGNATURE_LENGTH,))
            + r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big"))


def sign_encoded(header: GroupingHeader, payload_octets: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The signed General Signing APDU of ``header`` and a payload already encoded (``encode_payload``): the
    octets ``sign_and_encode`` gives, for a sender or device that encodes one payload for many messages (only
    the header, which names the device, differs between them)."""
    _check_p256(private_key, ec.EllipticCurvePrivateKey, "signing key")
    signed = header_octets(header) + write_length(len(payload_octets)) + payload_octets
    r, s = decode_dss_signature(private_key.sign(signed, _ECDSA))
    return (bytes((GENERAL_SIGNING_TAG,)) + signed + bytes((SIGNATURE_LENGTH,))
            + r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big"))


def verify_signature(message: GeneralCiphering | GeneralSigning | bytes,
                     public_key: ec.EllipticCurvePublicKey) -> None:
    """Raise GB:E019 unless the signature verifies with ``public_key`` (GB:E023 when there is none).

    Given octets (a General Signing APDU, or a General Ciphering one around it), the signature is
    checked over the octets as received; given a value, over its encoding.
    """
    _check_p256(public_key, ec.EllipticCurvePublicKey, "verification key")
    if isinstance(message, GeneralCiphering):
        message = message.apdu
    if isinstance(message, GeneralSigning):
        signed, signature = to_be_signed(message), message.signature
    elif not isinstance(message, bytes | bytearray | memoryview):
        raise gbcs_error(INVALID_VALUE, f"{type(message).__name__} is neither a GBCS message nor its octets")
    else:
        octets = bytes(message)
        frame = locate_signing_frame(octets)
        signed, signature = octets[frame.start + 1:frame.payload_end], frame.signature
    _verify(signed, signature, public_key)


def verify_frame_signature(octets: bytes, frame: SigningFrame, public_key: ec.EllipticCurvePublicKey) -> None:
    """``verify_signature(octets, public_key)`` for octets whose General Signing frame has been read already
    (``decode_framed``), over the octets as received, without reading the frame again."""
    _check_p256(public_key, ec.EllipticCurvePublicKey, "verification key")
    _verify(octets[frame.start + 1:frame.payload_end], frame.signature, public_key)


def _verify(signed: bytes, signature: bytes | None, public_key: ec.EllipticCurvePublicKey) -> None:
    if signature is None:
        raise gbcs_error(NOT_SIGNED, "the message carries no signature")
    r = int.from_bytes(signature[:_COORDINATE], "big")
    s = int.from_bytes(signature[_COORDINATE:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signed, _ECDSA)
    except (InvalidSignature, ValueError):
        raise gbcs_error(SIGNATURE_INVALID, "the signature does not verify with the originator's key") from None


def _check_p256(key: object, kind: type, what: str) -> None:
    if not isinstance(key, kind) or not isinstance(key.curve, ec.SECP256R1):  # type: ignore[attr-defined]
        raise gbcs_error(UNSUITABLE_KEY, f"the {what} must be an EC P-256 key")
