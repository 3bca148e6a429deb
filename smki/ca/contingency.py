"""The Contingency key: its public key travels in the Root OCA, AES-key-wrapped (RFC 5934, RFC 5649).

Devices hold the wrapped key inside their root trust anchor. In a contingency recovery the DCC releases
the symmetric wrapping key; a device unwraps the Contingency public key and trusts a new root signed by
it. Until then the wrapped value reveals nothing.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_wrap_with_padding

from smki.core.asn1 import parse_wrapped_apex_contingency_key, wrapped_apex_contingency_key

AES256_WRAP_PAD = "2.16.840.1.101.3.4.1.48"  # id-aes256-wrap-pad (RFC 5649)


def wrap_contingency_key(public_key: ec.EllipticCurvePublicKey, wrapping_key: bytes,
                         wrap_algorithm: str = AES256_WRAP_PAD) -> bytes:
    """The DER of the WrappedApexContingencyKey extension value."""
    if wrap_algorithm != AES256_WRAP_PAD or len(wrapping_key) != 32:
        raise ValueError("only AES-256 key wrap with padding is supported")
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return wrapped_apex_contingency_key(wrap_algorithm, aes_key_wrap_with_padding(wrapping_key, spki))


def unwrap_contingency_key(extension_value: bytes, wrapping_key: bytes) -> ec.EllipticCurvePublicKey:
    """What a device does at a contingency recovery, given the released symmetric key."""
    algorithm, wrapped = parse_wrapped_apex_contingency_key(extension_value)
    if algorithm != AES256_WRAP_PAD:
        raise ValueError(f"unsupported wrap algorithm {algorithm}")
    key = serialization.load_der_public_key(aes_key_unwrap_with_padding(wrapping_key, wrapped))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the contingency key is not an EC key")
    return key
