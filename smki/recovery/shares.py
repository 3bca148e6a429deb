"""The threshold scheme: a 32-byte key-encryption key split m-of-n, each share sealed under its custodian's
passphrase.

Shamir's scheme is pycryptodome's (``Crypto.Protocol.SecretSharing.Shamir``): maintained and reviewed, over
GF(2^128), so it shares 16-byte secrets. An AES-256 KEK is shared as two halves split with the same share
indices; a custodian's share is the pair, 32 bytes. Each sealed share is bound (AES-GCM associated data) to
its custody and its custodian, so a share cannot be presented under another custodian's name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from Crypto.Protocol.SecretSharing import Shamir
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEK_BYTES = 32
_HALF = 16
_MAGIC = b"SMKI-SHARE-1"
# scrypt at the strength the key store uses for its own secrets: a custodian's share is worth as much
_SCRYPT_N = 2**14


@dataclass(frozen=True)
class Share:
    index: int     # 1..n, the x-coordinate
    value: bytes   # 32 bytes: the two halves' y-coordinates

    def __repr__(self) -> str:  # never print a share
        return f"Share(index={self.index}, value=<{len(self.value)} bytes>)"


class ShareUnopenable(Exception):
    """Wrong passphrase, or a sealed share altered or bound to another custody or custodian."""


def new_kek() -> bytes:
    return secrets.token_bytes(KEK_BYTES)


def split(kek: bytes, threshold: int, count: int) -> list[Share]:
    if len(kek) != KEK_BYTES:
        raise ValueError("the key-encryption key is 32 bytes")
    low = Shamir.split(threshold, count, kek[:_HALF])
    high = Shamir.split(threshold, count, kek[_HALF:])
    return [Share(i, a + b) for (i, a), (j, b) in zip(low, high, strict=True) if i == j]


def combine(shares: list[Share]) -> bytes:
    """The KEK from ``shares`` (at least the threshold; distinct indices). Wrong shares give a wrong KEK,
    not an error: callers check the result by opening what it sealed."""
    low = Shamir.combine([(s.index, s.value[:_HALF]) for s in shares])
    high = Shamir.combine([(s.index, s.value[_HALF:]) for s in shares])
    return low + high


def commitment(binding: str, share: Share) -> str:
    """What the custody stores to recognise a share without holding it: a keyed hash over the share, bound to
    the custody and custodian. Shares are 256 random bits, so the hash reveals nothing usable."""
    return hmac.new(share.value, f"{binding}|{share.index}".encode(), hashlib.sha256).hexdigest()


def _sealing_key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=8, p=1).derive(passphrase.encode())


def seal(share: Share, passphrase: str, binding: str) -> bytes:
    """The share as its custodian carries it: magic, salt, nonce, AES-GCM(index || value)."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    body = share.index.to_bytes(2, "big") + share.value
    return _MAGIC + salt + nonce + AESGCM(_sealing_key(passphrase, salt)).encrypt(nonce, body, binding.encode())


def open_sealed(sealed: bytes, passphrase: str, binding: str) -> Share:
    if not sealed.startswith(_MAGIC) or len(sealed) < len(_MAGIC) + 28 + 16:
        raise ShareUnopenable("not a sealed share")
    rest = sealed[len(_MAGIC):]
    salt, nonce, body = rest[:16], rest[16:28], rest[28:]
    try:
        plain = AESGCM(_sealing_key(passphrase, salt)).decrypt(nonce, body, binding.encode())
    except InvalidTag:
        raise ShareUnopenable("the share does not open") from None
    if len(plain) != 2 + KEK_BYTES:
        raise ShareUnopenable("the share is malformed")
    return Share(int.from_bytes(plain[:2], "big"), plain[2:])
