"""GBCS CS02b "Update Security Credentials": a codec for the messages a device receives and sends.

Pure: it stands on :mod:`smki.core`, ``cryptography`` and ``asn1crypto`` only (no database, no RA or
CA), so the CA, the estate simulator and the recovery drills can all use it. Every decoder and encoder
answers bad input with a :class:`GbcsError` (codes ``GB:E001``.. in :data:`CODES`). docs/gbcs.md has
the byte layouts and the checks.

Typical use::

    pre = build.command(originator, device, counter, UpdateSecurityCredentials(...))
    signed = sign(pre, supplier_ds_key)
    wire = encode(wrap_with_mac(signed, acb_ka_key, device_ka_public_key))   # modes 0..7
    message = decode(wire)                                                   # GeneralCiphering
    verify_mac(wire, device_ka_key, acb_ka_public_key); verify_signature(wire, supplier_ds_public_key)
"""

from smki.gbcs import build
from smki.gbcs.build import (
    ALERT_FUTURE_DATED_FAILURE,
    ALERT_FUTURE_DATED_SUCCESS,
    dlms_date_time,
    parse_dlms_date_time,
)
from smki.gbcs.ciphering import compute_mac, mac_key, verify_mac, wrap_with_mac
from smki.gbcs.describe import describe
from smki.gbcs.errors import CODES, GbcsError
from smki.gbcs.messages import decode, decode_framed, encode
from smki.gbcs.payload import decode_alert, decode_command, decode_response, encode_payload
from smki.gbcs.rtds import export, from_hex, read_message_file, signer_among, to_hex, write_message_file
from smki.gbcs.signing import (
    sign,
    sign_and_encode,
    sign_encoded,
    to_be_signed,
    verify_frame_signature,
    verify_signature,
)
from smki.gbcs.values import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CpvTimeChecks,
    CraFlag,
    CredentialsReplacementMode,
    ExecutionOutcome,
    GeneralCiphering,
    GeneralSigning,
    GroupingHeader,
    KeyUsage,
    LengthEncoding,
    Message,
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

__all__ = [
    "ALERT_FUTURE_DATED_FAILURE", "ALERT_FUTURE_DATED_SUCCESS", "CODES", "AuthorisingRemotePartyControl", "CellUsage",
    "CpvTimeChecks", "CraFlag", "CredentialsReplacementMode", "ExecutionOutcome", "GbcsError", "GeneralCiphering",
    "GeneralSigning", "GroupingHeader", "KeyUsage", "LengthEncoding", "Message", "Payload", "RemotePartyRole",
    "RemotePartySeqNumberChange", "ReplacementOutcome", "SeqNumberUsage", "SpecialistSeqNumber", "StatusCode",
    "TrustAnchorCell", "TrustAnchorReplacement", "UpdateSecurityCredentials", "UpdateSecurityCredentialsAlert",
    "UpdateSecurityCredentialsResponse", "build", "compute_mac", "decode", "decode_alert", "decode_command",
    "decode_framed", "decode_response", "describe", "dlms_date_time", "encode", "encode_payload", "export", "from_hex",
    "mac_key", "parse_dlms_date_time", "read_message_file", "sign", "sign_and_encode", "sign_encoded", "signer_among",
    "to_be_signed", "to_hex", "verify_frame_signature", "verify_mac", "verify_signature", "wrap_with_mac",
    "write_message_file"
]
