"""Where the sandbox keeps its state, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICIES_DIR = PROJECT_ROOT / "policies"


def policies_dir_from_env() -> Path:
    """The policy folder: ``SMKI_POLICIES``, else the project's ``policies/`` (a checkout or editable install)."""
    return Path(os.environ.get("SMKI_POLICIES", DEFAULT_POLICIES_DIR)).resolve()


@dataclass(frozen=True)
class Settings:
    instance_dir: Path
    database_url: str
    policies_dir: Path
    environment: str | None  # None: policies/environment.yaml decides

    @classmethod
    def from_env(cls, instance_dir: str | os.PathLike[str] | None = None,
                 database_url: str | None = None) -> Settings:
        instance = Path(instance_dir or os.environ.get("SMKI_INSTANCE", "instance")).resolve()
        url = database_url or os.environ.get("SMKI_DATABASE_URL") or f"sqlite:///{instance / 'smki.core.db'}"
        return cls(instance, url, policies_dir_from_env(), os.environ.get("SMKI_ENVIRONMENT"))

    @property
    def ca_dir(self) -> Path:
        return self.instance_dir / "ca"

    @property
    def keystore_dir(self) -> Path:
        return self.instance_dir / "keystore"
