"""Serial numbers and key identifiers exactly as GBCS and the DCC's certificates have them."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_serial(octets: int = 16) -> int:
    """A positive serial of exactly ``octets`` octets: first octet 0x01..0x7F, the rest random.

    The first octet is never 0x00 (the DER INTEGER would shrink) nor >= 0x80 (it would need a sign
    octet and become 17 octets).
    """
    first = 1 + secrets.randbelow(0x7F)
    return int.from_bytes(bytes([first]) + secrets.token_bytes(octets - 1), "big")


def subject_key_identifier(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 5280 4.2.1.2 method 2: ``0100`` then the low 60 bits of SHA-1 of the subjectPublicKey.

    The subjectPublicKey BIT STRING's value is the uncompressed point, so that is what is hashed.
    """
    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    low = bytearray(hashlib.sha1(point).digest()[-8:])
    low[0] = 0x40 | (low[0] & 0x0F)
    return bytes(low)


def serial_hex(serial: int) -> str:
    return f"{serial:032X}"
