"""General Ciphering with the Access Control Broker's MAC (GBCS section 4), for every non-recovery mode.

Key: ECDH between the ACB's and the device's key-agreement keys (either private half with the other's
public half gives the same secret), then the GBCS one-step KDF (SHA-256 over counter 00000001 ||
secret || OtherInfo) cut to an AES-128 key. OtherInfo = AlgorithmID (the DLMS aes-gcm-128 identifier)
|| the business originator || the transaction ID (09, CRA flag, originator counter) || the business
target. The MAC is the 12-octet AES-GCM tag over no plaintext, with IV = business originator ||
invocation counter and AAD = security header || 00 || the General Signing APDU.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smki.gbcs.errors import INVALID_VALUE, MAC_INVALID, UNSUITABLE_KEY, gbcs_error
from smki.gbcs.framing import (
    CIPHERING_HEADER,
    MAC_LENGTH,
    SECURITY_CONTROL_MAC_ONLY,
    CipheringFrame,
    read_ciphering_frame,
    write_length,
)
from smki.gbcs.signing import apdu_from_frame, encode_general_signing
from smki.gbcs.values import GeneralCiphering, GeneralSigning, GroupingHeader

# DLMS cryptographic algorithm ID for aes-gcm-128 (2.16.756.5.8.3.0), as the KDF's AlgorithmID.
KDF_ALGORITHM_ID = bytes.fromhex("60857406080300")
_KDF_COUNTER = b"\x00\x00\x00\x01"
_AES_128 = 16
# [V, vector] one zero octet sits between the security header and the APDU in the AAD: the RTDS MACs
# verify only with it.
_AAD_SEPARATOR = b"\x00"
MAX_INVOCATION_COUNTER = 0xFFFFFFFF


def decode_general_ciphering(octets: bytes) -> GeneralCiphering:
    octets = bytes(octets)
    return general_ciphering_from_frame(octets, read_ciphering_frame(octets))


def general_ciphering_from_frame(octets: bytes, frame: CipheringFrame) -> GeneralCiphering:
    return GeneralCiphering(apdu=apdu_from_frame(octets, frame.inner), mac=frame.mac,
                            invocation_counter=frame.invocation_counter)


def encode_general_ciphering(message: GeneralCiphering) -> bytes:
    if not isinstance(message, GeneralCiphering):
        raise gbcs_error(INVALID_VALUE, f"{type(message).__name__} is not a GeneralCiphering APDU")
    if not isinstance(message.mac, bytes) or len(message.mac) != MAC_LENGTH:
        raise gbcs_error(INVALID_VALUE, "a MAC is 12 octets", "mac")
    content = _security_header(message.invocation_counter) + encode_general_signing(message.apdu) + message.mac
    return CIPHERING_HEADER + write_length(len(content)) + content


def mac_key(private_key: ec.EllipticCurvePrivateKey, peer_public_key: ec.EllipticCurvePublicKey,
            header: GroupingHeader) -> bytes:
    """The AES-128 key for one message's MAC (the ACB's private KA key with the device's public one, or
    the device's private KA key with the ACB's public one)."""
    for key, kind, what in ((private_key, ec.EllipticCurvePrivateKey, "private key-agreement key"),
                            (peer_public_key, ec.EllipticCurvePublicKey, "peer's key-agreement key")):
        if not isinstance(key, kind) or not isinstance(key.curve, ec.SECP256R1):
            raise gbcs_error(UNSUITABLE_KEY, f"the {what} must be an EC P-256 key")
    try:
        secret = private_key.exchange(ec.ECDH(), peer_public_key)
    except ValueError:
        raise gbcs_error(UNSUITABLE_KEY, "the key-agreement keys do not agree a secret") from None
    originator = header.business_originator.value
    other_info = b"".join((KDF_ALGORITHM_ID, originator, bytes((9, header.cra_flag)),
                           header.originator_counter.to_bytes(8, "big"), header.business_target.value))
    return hashlib.sha256(_KDF_COUNTER + secret + other_info).digest()[:_AES_128]


def compute_mac(key: bytes, header: GroupingHeader, apdu_octets: bytes, invocation_counter: int = 0) -> bytes:
    """The 12-octet GMAC over an encoded General Signing APDU."""
    iv = header.business_originator.value + invocation_counter.to_bytes(4, "big")
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(_security_header(invocation_counter) + _AAD_SEPARATOR + apdu_octets)
    encryptor.finalize()
    return encryptor.tag[:MAC_LENGTH]


def wrap_with_mac(apdu: GeneralSigning, acb_private_key: ec.EllipticCurvePrivateKey,
                  device_public_key: ec.EllipticCurvePublicKey, invocation_counter: int = 0) -> GeneralCiphering:
    """The command as the ACB sends it: the signed (or, for mode 4, unsigned) APDU with its MAC."""
    octets = encode_general_signing(apdu)
    key = mac_key(acb_private_key, device_public_key, apdu.header)
    return GeneralCiphering(apdu=apdu, mac=compute_mac(key, apdu.header, octets, invocation_counter),
                            invocation_counter=invocation_counter)


def verify_mac(message: GeneralCiphering | bytes, private_key: ec.EllipticCurvePrivateKey,
               peer_public_key: ec.EllipticCurvePublicKey) -> None:
    """Raise GB:E020 unless the MAC verifies; given octets, over the APDU exactly as received."""
    if isinstance(message, GeneralCiphering):
        header, apdu_octets = message.apdu.header, encode_general_signing(message.apdu)
        mac, counter = message.mac, message.invocation_counter
    elif not isinstance(message, bytes | bytearray | memoryview):
        raise gbcs_error(INVALID_VALUE, f"{type(message).__name__} is neither a General Ciphering message nor its "
                         "octets")
    else:
        octets = bytes(message)
        frame = read_ciphering_frame(octets)
        header, mac, counter = frame.inner.header, frame.mac, frame.invocation_counter
        apdu_octets = octets[frame.inner.start:frame.inner.end]
    expected = compute_mac(mac_key(private_key, peer_public_key, header), header, apdu_octets, counter)
    if not hmac.compare_digest(expected, mac):
        raise gbcs_error(MAC_INVALID, "the MAC does not verify with the ACB's and the device's key-agreement keys")


def _security_header(invocation_counter: int) -> bytes:
    if isinstance(invocation_counter, bool) or not isinstance(invocation_counter, int) \
            or not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
        raise gbcs_error(INVALID_VALUE, "the invocation counter is 4 octets", "invocation_counter")
    return bytes((SECURITY_CONTROL_MAC_ONLY,)) + invocation_counter.to_bytes(4, "big")


