"""Private keys behind an interface, so that an HSM store can replace the file store.

The CA only ever asks a store for a *signer*: an object satisfying ``EllipticCurvePrivateKey`` whose
``sign`` is what builders call. ``cryptography``'s builders call ``sign`` on any implementation of that
interface, so an HSM store returns a proxy whose ``sign`` asks the module, and the CA is unchanged.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from smki.core.errors import ConfigurationError
from smki.core.files import create_once, write_atomically

_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class KeyStore(Protocol):
    def generate(self, label: str) -> ec.EllipticCurvePublicKey: ...
    def signer(self, label: str) -> ec.EllipticCurvePrivateKey: ...
    def has(self, label: str) -> bool: ...
    def put_secret(self, label: str, secret: bytes) -> None: ...
    def get_secret(self, label: str) -> bytes: ...
    def ensure_secret(self, label: str, length: int = 32) -> bytes: ...
    def destroy(self, label: str) -> None: ...


def _check_label(label: str) -> None:
    if not _LABEL.match(label):
        raise ValueError(f"key label {label!r} is not a safe file name")


class FileKeyStore:
    """EC keys as encrypted PKCS#8 files, secrets as AES-GCM blobs, all under one passphrase.

    The passphrase is the one given (the instance gives ``SMKI_KEYSTORE_PASSPHRASE`` when set: how an operator
    would run it), else from a ``passphrase`` file the store creates with owner-only permissions (the sandbox
    default).
    """

    def __init__(self, directory: Path, passphrase: bytes | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._passphrase = passphrase or self._load_passphrase()
        self._signers: dict[str, ec.EllipticCurvePrivateKey] = {}

    def _load_passphrase(self) -> bytes:
        path = self.directory / "passphrase"
        if path.exists():
            return path.read_bytes().strip()
        # Two processes opening a new store at once must not each seal keys under a passphrase of their own.
        return create_once(path, secrets.token_urlsafe(32).encode()).strip()

    def _key_path(self, label: str) -> Path:
        _check_label(label)
        return self.directory / f"{label}.key.pem"

    def has(self, label: str) -> bool:
        return self._key_path(label).exists()

    def generate(self, label: str) -> ec.EllipticCurvePublicKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(self._passphrase))
        write_atomically(self._key_path(label), pem)
        self._signers[label] = key
        return key.public_key()

    def signer(self, label: str) -> ec.EllipticCurvePrivateKey:
        if label not in self._signers:
            path = self._key_path(label)
            if not path.exists():
                raise ConfigurationError("CA:KEY1", f"no private key '{label}' in {self.directory}; "
                                         "run 'smki init'")
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), self._passphrase)
            except ValueError as exc:
                raise ConfigurationError("CA:KEY2", f"private key '{label}' cannot be decrypted: "
                                         "check SMKI_KEYSTORE_PASSPHRASE") from exc
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigurationError("CA:KEY3", f"private key '{label}' is not an EC key")
            self._signers[label] = key
        return self._signers[label]

    # Symmetric secrets (the contingency wrapping key) are sealed with a key derived from the passphrase.
    def _sealing_key(self, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(self._passphrase)

    def put_secret(self, label: str, secret: bytes) -> None:
        _check_label(label)
        write_atomically(self.directory / f"{label}.secret", self._seal(label, secret))

    def ensure_secret(self, label: str, length: int = 32) -> bytes:
        """The secret called ``label``, made of ``length`` random bytes the first time any process asks:
        processes that ask at once all get the one that was stored first, and none fails."""
        _check_label(label)
        path = self.directory / f"{label}.secret"
        if not path.exists():
            create_once(path, self._seal(label, secrets.token_bytes(length)))
        return self.get_secret(label)

    def _seal(self, label: str, secret: bytes) -> bytes:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        return salt + nonce + AESGCM(self._sealing_key(salt)).encrypt(nonce, secret, label.encode())

    def get_secret(self, label: str) -> bytes:
        _check_label(label)
        path = self.directory / f"{label}.secret"
        if not path.exists():
            raise ConfigurationError("CA:KEY4", f"no secret '{label}' in {self.directory}")
        blob = path.read_bytes()
        salt, nonce, sealed = blob[:16], blob[16:28], blob[28:]
        return AESGCM(self._sealing_key(salt)).decrypt(nonce, sealed, label.encode())


    # --- Removal: a key taken into custody must no longer be usable from this store ----------------------
    # Two steps, so that a caller can make removal part of a decision recorded elsewhere: set_aside() takes
    # the key out of use (renamed; signer() and get_secret() no longer find it) before the decision commits,
    # put_back() undoes that if it does not, destroy() removes it for good once it has. Each is idempotent,
    # so a process that died between the steps is finished by running the right one again.
    _ASIDE = ".withdrawn"

    def _files(self, label: str) -> list[Path]:
        _check_label(label)
        return [self.directory / f"{label}.key.pem", self.directory / f"{label}.secret"]

    def set_aside(self, label: str) -> bool:
        """Take ``label`` (key and secret) out of use; True if anything was set aside now or before."""
        self._signers.pop(label, None)
        found = False
        for path in self._files(label):
            aside = path.with_name(path.name + self._ASIDE)
            if path.exists():
                os.replace(path, aside)
            found = found or aside.exists()
        self._sync()
        return found

    def put_back(self, label: str) -> None:
        """Undo :meth:`set_aside` (the decision it was part of did not commit)."""
        for path in self._files(label):
            aside = path.with_name(path.name + self._ASIDE)
            if aside.exists() and not path.exists():
                os.replace(aside, path)
        self._sync()

    def destroy(self, label: str) -> None:
        """Remove ``label`` for good, in use or set aside; nothing there is not an error. (The files were
        encrypted under the store's passphrase; unlinking is what a file system allows: see docs/recovery.md.)"""
        self._signers.pop(label, None)
        for path in self._files(label):
            for candidate in (path, path.with_name(path.name + self._ASIDE)):
                candidate.unlink(missing_ok=True)
        self._sync()

    def holds(self, label: str) -> bool:
        """A key or a secret called ``label`` is in use here."""
        return any(path.exists() for path in self._files(label))

    def set_aside_labels(self) -> list[str]:
        """Labels with something set aside (a decision that did not finish)."""
        return sorted({p.name.split(".", 1)[0] for p in self.directory.glob(f"*{self._ASIDE}")})

    def _sync(self) -> None:
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# --- Custody: key material sealed under a key-encryption key (KEK) that no single person holds ------------
# Pure functions, so that the CA keeps no database: whoever keeps the custody records (smki.recovery) asks
# the CA to seal and open, and the KEK exists only in the memory of a ceremony that reconstructed it.

CUSTODY_SEAL_FAILED = "CA:KEY5"


def seal_under_key(kek: bytes, label: str, secret: bytes) -> bytes:
    """``secret`` sealed with AES-256-GCM under ``kek``, bound to ``label`` (a sealed Recovery key cannot be
    passed off as the Contingency key)."""
    if len(kek) != 32:
        raise ValueError("a custody key-encryption key is 32 bytes (AES-256)")
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, secret, label.encode())


def open_under_key(kek: bytes, label: str, sealed: bytes) -> bytes:
    """What :func:`seal_under_key` sealed; ``CA:KEY5`` when ``kek`` or ``label`` is not the one it was sealed
    with, or the blob was altered."""
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(kek).decrypt(sealed[:12], sealed[12:], label.encode())
    except (InvalidTag, ValueError) as exc:
        raise ConfigurationError(CUSTODY_SEAL_FAILED, f"the sealed '{label}' cannot be opened with the "
                                 "reconstructed key: the shares presented are not the ones it was sealed "
                                 "under") from exc


def private_key_material(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 DER, for sealing under a custody key only (never written out)."""
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def private_key_from_material(material: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(material, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigurationError("CA:KEY3", "the key in custody is not an EC key")
    return key
