"""One sandbox instance: its settings, policies, key stores, CA hierarchy and database, wired once."""

from __future__ import annotations

from functools import cached_property

from smki.ca.authority import CertificationAuthority, Hierarchy
from smki.ca.keystore import FileKeyStore, KeyStore
from smki.core.config import Settings
from smki.core.db import Database
from smki.core.policy import Policies, load_policies


class Instance:
    def __init__(self, settings: Settings, keystore: KeyStore | None = None) -> None:
        self.settings = settings
        self._keystore = keystore

    @classmethod
    def from_env(cls, **overrides: str) -> Instance:
        return cls(Settings.from_env(**overrides))  # type: ignore[arg-type]

    @cached_property
    def policies(self) -> Policies:
        return load_policies(self.settings.policies_dir, self.settings.environment)

    @cached_property
    def keystore(self) -> KeyStore:
        return self._keystore or FileKeyStore(self.settings.keystore_dir)

    @cached_property
    def custody(self) -> KeyStore:
        """Held apart from the CA keys: the Contingency wrapping key lives here, released only at a
        contingency recovery."""
        return FileKeyStore(self.settings.instance_dir / "custody")

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
