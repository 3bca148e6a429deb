"""Messages as files in the layout of the DCC's Reference Test Data Set, which GBCS tools read.

An RTDS message file holds one message as upper-case hexadecimal, no separators and no line end; on
reading, whitespace between octets is ignored. The export writes, beside it, the certificates that
verify it as one PEM file, each preceded by a comment naming what it verifies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smki.gbcs.errors import BAD_HEX, INVALID_VALUE, GbcsError, gbcs_error
from smki.gbcs.messages import decode, encode
from smki.gbcs.signing import verify_signature
from smki.gbcs.values import Message

_WHITESPACE = re.compile(rb"\s+")
MESSAGE_SUFFIX = "_GBCS.HEX"
CERTIFICATES_SUFFIX = "_CERTS.PEM"


def to_hex(octets: bytes) -> str:
    return bytes(octets).hex().upper()


def from_hex(text: str | bytes) -> bytes:
    """Octets from an RTDS hex rendering (whitespace ignored); GB:E018 when it is not one."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    compact = _WHITESPACE.sub(b"", raw)
    try:
        return bytes.fromhex(compact.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise gbcs_error(BAD_HEX, "the text is not an even number of hexadecimal digits") from None


def read_message_file(path: Path) -> bytes:
    """A message file's octets: RTDS hex, or the raw octets when the file starts DD or DF."""
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise gbcs_error(INVALID_VALUE, f"cannot read {path}: {error.strerror}") from None
    if content[:1] in (b"\xdd", b"\xdf"):
        return content
    return from_hex(content)


def write_message_file(path: Path, octets: bytes) -> Path:
    Path(path).write_text(to_hex(octets), encoding="ascii")
    return Path(path)


def signer_among(octets: bytes, certificates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The first certificate whose key verifies the message's signature, if any does."""
    for certificate in certificates:
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        try:
            verify_signature(octets, key)
        except GbcsError:
            continue
        return certificate
    return None


def export(message: Message | bytes, directory: Path, name: str,
           certificates: Sequence[x509.Certificate] = ()) -> tuple[Path, Path | None]:
    """Write ``<name>_GBCS.HEX`` and, when certificates are given, ``<name>_CERTS.PEM`` in ``directory``.

    The message is decoded (or encoded) first, so only a well-formed CS02b message is written. Each
    certificate is labelled with its role towards the message: ``signer`` when its key verifies the
    signature, otherwise ``supporting`` (the device's and the ACB's key-agreement certificates for the
    MAC, a certification path).
    """
    octets = bytes(message) if isinstance(message, bytes | bytearray) else encode(message)
    decode(octets)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise gbcs_error(INVALID_VALUE, f"{name!r} is not a file name stem (letters, digits, . _ -)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    message_path = write_message_file(directory / f"{name}{MESSAGE_SUFFIX}", octets)
    if not certificates:
        return message_path, None
    signer = signer_among(octets, certificates)
    blocks = []
    for certificate in certificates:
        role = "signer" if certificate is signer else "supporting"
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        blocks.append(f"# {role}: {certificate.subject.rfc4514_string() or '(empty subject)'} "
                      f"serial {certificate.serial_number:x}\n{pem}")
    certificates_path = directory / f"{name}{CERTIFICATES_SUFFIX}"
    certificates_path.write_text("".join(blocks), encoding="ascii")
    return message_path, certificates_path
