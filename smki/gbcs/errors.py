"""The GBCS codec's refusals: one coded error, a catalogue of its codes, and nothing else escaping.

Every decoder and encoder in ``smki.gbcs`` answers bad input with a :class:`GbcsError` whose code is in
:data:`CODES`; docs/gbcs.md renders the same table. Codes are never reused for a different meaning.
"""

from __future__ import annotations

from smki.core.errors import SmkiError

TRUNCATED = "GB:E001"
TRAILING_OCTETS = "GB:E002"
UNKNOWN_APDU = "GB:E003"
UNSUPPORTED_CIPHERING = "GB:E004"
BAD_LENGTH = "GB:E005"
WRONG_FIELD_LENGTH = "GB:E006"
UNKNOWN_CRA_FLAG = "GB:E007"
NOT_CS02B = "GB:E008"
CODE_MODE_MISMATCH = "GB:E009"
BAD_PAYLOAD = "GB:E010"
UNKNOWN_MODE = "GB:E011"
UNKNOWN_ROLE = "GB:E012"
UNSUPPORTED_KEY_USAGE = "GB:E013"
UNKNOWN_CELL_USAGE = "GB:E014"
UNKNOWN_STATUS = "GB:E015"
OUT_OF_RANGE = "GB:E016"
NOT_A_CERTIFICATE = "GB:E017"
BAD_HEX = "GB:E018"
SIGNATURE_INVALID = "GB:E019"
MAC_INVALID = "GB:E020"
INVALID_VALUE = "GB:E021"
UNSUITABLE_KEY = "GB:E022"
NOT_SIGNED = "GB:E023"

CODES: dict[str, str] = {
    TRUNCATED: "the octets end before the structure they announce does",
    TRAILING_OCTETS: "octets follow the end of the message",
    UNKNOWN_APDU: "the message is neither a General Ciphering (DD) nor a General Signing (DF) APDU",
    UNSUPPORTED_CIPHERING: "the General Ciphering header is not the MAC-only form CS02b uses (empty fields, "
                           "security control 11)",
    BAD_LENGTH: "a length is indefinite, not minimal, or longer than this codec reads",
    WRONG_FIELD_LENGTH: "a fixed-size field has the wrong length (transaction ID 9, identifiers 8, date-time 0 "
                        "or 12, other information 2, signature 0 or 64, MAC 12 octets)",
    UNKNOWN_CRA_FLAG: "the CRA flag is not 01 (command), 02 (response) or 03 (alert)",
    NOT_CS02B: "the message code is not a CS02b one (0x0100..0x0109, alert 0x00CB)",
    CODE_MODE_MISMATCH: "the message code disagrees with the payload's credentials replacement mode, or the "
                        "payload kind with the CRA flag",
    BAD_PAYLOAD: "the payload is not the DER (or BER) encoding of the CS02b structure",
    UNKNOWN_MODE: "the credentials replacement mode is not one of 0..9",
    UNKNOWN_ROLE: "the remote party role is not one GBCS defines",
    UNSUPPORTED_KEY_USAGE: "a trust anchor cell's key usage has no bit, or a bit GBCS cells do not use",
    UNKNOWN_CELL_USAGE: "the trust anchor cell usage is not management (0) or prePaymentTopUp (1)",
    UNKNOWN_STATUS: "the replacement status code is not one GBCS defines for CS02b",
    OUT_OF_RANGE: "an integer is negative or wider than its field",
    NOT_A_CERTIFICATE: "a certificate field does not hold a DER SEQUENCE (or an X.509 certificate when read)",
    BAD_HEX: "the file is not a hex rendering of octets",
    SIGNATURE_INVALID: "the General Signing signature does not verify with the key given",
    MAC_INVALID: "the General Ciphering MAC does not verify with the keys given",
    INVALID_VALUE: "a value given to an encoder cannot be encoded",
    UNSUITABLE_KEY: "a key is not an EC P-256 key of the kind the operation needs",
    NOT_SIGNED: "the message carries no signature to verify",
}


class GbcsError(SmkiError):
    """A GBCS message, or a value to encode as one, that the codec refuses; nothing partial is returned."""


def gbcs_error(code: str, message: str, field: str | None = None) -> GbcsError:
    if code not in CODES:  # a programming error: every code is in the catalogue
        raise ValueError(f"{code} is not a GBCS codec code")
    return GbcsError(code, message, field)
