"""One sandbox instance: its settings, policies, key stores, CA hierarchy and database, wired once."""

from __future__ import annotations

import os
from functools import cached_property
from typing import IO

from smki.ca.authority import CertificationAuthority, Hierarchy
from smki.ca.keystore import FileKeyStore, KeyStore
from smki.core.config import Settings
from smki.core.db import Database
from smki.core.errors import ConfigurationError
from smki.core.policy import Policies, load_policies

# The key of the portals' signed session cookie and CSRF tokens (Flask's ``secret_key``): one per instance, so
# that every web worker, and every restart, accepts what another issued.
SESSION_KEY = "portal-session-key"
SERVED = "CA:SRV01"  # another `smki serve` holds the instance


class Instance:
    def __init__(self, settings: Settings, keystore: KeyStore | None = None) -> None:
        self.settings = settings
        self._keystore = keystore

    @classmethod
    def from_env(cls, **overrides: str) -> Instance:
        return cls(Settings.from_env(**overrides))

    @cached_property
    def policies(self) -> Policies:
        return load_policies(self.settings.policies_dir, self.settings.environment)

    @cached_property
    def keystore(self) -> KeyStore:
        return self._keystore or FileKeyStore(self.settings.keystore_dir, self.settings.keystore_passphrase_bytes)

    @cached_property
    def custody(self) -> KeyStore:
        """Held apart from the CA keys: the Contingency wrapping key lives here, released only at a
        contingency recovery."""
        return FileKeyStore(self.settings.instance_dir / "custody", self.settings.keystore_passphrase_bytes)

    @cached_property
    def hierarchy(self) -> Hierarchy:
        return Hierarchy(self.settings.ca_dir)

    @cached_property
    def ca(self) -> CertificationAuthority:
        return CertificationAuthority(self.policies, self.keystore, self.hierarchy)

    @cached_property
    def database(self) -> Database:
        self.settings.instance_dir.mkdir(parents=True, exist_ok=True)
        return Database(self.settings.database_url)

    @cached_property
    def session_key(self) -> bytes:
        return self.keystore.ensure_secret(SESSION_KEY)

    def prepare_secrets(self) -> None:
        """Create every secret the instance's processes need, once, before any of them starts: the web
        workers only ever read them."""
        _ = self.session_key

    def hold(self) -> ServingLock:
        """Claim the instance for one ``smki serve``, or refuse (``CA:SRV01``) while another holds it."""
        self.settings.instance_dir.mkdir(parents=True, exist_ok=True)
        return ServingLock.acquire(self.settings.instance_dir / "serve.lock")


class ServingLock:
    """An exclusive ``flock`` on ``<instance>/serve.lock``, held as long as any process of one ``smki serve``
    lives: the master holds it, its web workers inherit it when forked, and its companions are handed it. So
    a second serve of the instance is refused until every process of the first is gone, however it ended
    (even ``kill -9``), and the kernel releases it with the last of them: there is no stale lock to clean up.
    """

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    @property
    def fd(self) -> int:
        return self.handle.fileno()

    @classmethod
    def acquire(cls, path: os.PathLike[str]) -> ServingLock:
        import fcntl  # POSIX: smki serve (gunicorn) runs on nothing else

        handle = open(path, "a+")  # noqa: SIM115 -- held open for the life of the service, on purpose
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigurationError(SERVED, f"this instance ({os.path.dirname(path)}) is already being served "
                                     f"(smki serve, process {holder}, or its workers still stopping); stop that "
                                     "one first, or give this one another SMKI_INSTANCE.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        self.handle.close()
