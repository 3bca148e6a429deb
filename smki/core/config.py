"""The process's settings: every ``SMKI_*`` environment variable the sandbox reads, typed and validated in
one place (``docs/configuration.md`` lists them).

Modules take them from ``instance.settings`` (or :func:`current_settings` where there is no instance),
never from ``os.environ``. A value that cannot be used is refused when the settings are read, as a coded
:class:`ConfigurationError` naming the variable and what was expected.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from smki.core.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICIES_DIR = PROJECT_ROOT / "policies"
BAD_SETTING = "CA:CFG13"
PREFIX = "SMKI_"
# What Settings(a, b, c, d) means, for the callers that build it positionally.
_POSITIONAL = ("instance_dir", "database_url", "policies_dir", "environment")


def _absolute(path: Path) -> Path:
    return path.resolve()


def _import_target(text: str | None) -> str | None:
    if text is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", text):
        raise ValueError("module:callable, such as smki.devicecsr.gate:ledger_gate")
    return text


Folder = Annotated[Path, AfterValidator(_absolute)]
ImportTarget = Annotated[str | None, AfterValidator(_import_target)]


class Settings(BaseSettings):
    """Read from the environment when built; a keyword argument (or a positional one, in the order
    instance_dir, database_url, policies_dir, environment) overrides its variable."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, env_ignore_empty=True, extra="ignore",
                                      validate_by_name=True, validate_by_alias=True, use_attribute_docstrings=True)

    instance_dir: Folder = Field(Path("instance"), validation_alias="SMKI_INSTANCE")
    """The instance folder: CA certificates, key stores, the SQLite database, extracts."""

    database_url: str = Field(default_factory=lambda values: f"sqlite:///{values['instance_dir'] / 'smki.db'}",
                              validation_alias="SMKI_DATABASE_URL", min_length=1)
    """Any SQLAlchemy URL (``postgresql://...`` uses psycopg 3); default: SQLite in the instance folder."""

    policies_dir: Folder = Field(DEFAULT_POLICIES_DIR, validation_alias="SMKI_POLICIES")
    """The policy folder (``policies/`` beside the code in a checkout or editable install)."""

    environment: str | None = Field(None, validation_alias="SMKI_ENVIRONMENT", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    """Which ``policies/environments/<name>.yaml`` applies; unset: ``policies/environment.yaml`` decides."""

    keystore_passphrase: SecretStr | None = Field(None, validation_alias="SMKI_KEYSTORE_PASSPHRASE")
    """Encrypts the CA private keys and secrets at rest; unset: a generated owner-only ``passphrase`` file."""

    queue_url: str | None = Field(None, validation_alias="SMKI_QUEUE_URL")
    """The Device CSR job queue (``sqlite:///...``, ``postgresql://...``, ``redis://...``); unset: beside the
    database (an SQLite file in the instance folder, or the PostgreSQL database itself)."""

    devicecsr_on_issued: ImportTarget = Field(None, validation_alias="SMKI_DEVICECSR_ON_ISSUED")
    """``module:callable`` called with each committed chunk of Device Certificates; unset: lodge them in the
    Repository."""

    devicecsr_gate: ImportTarget = Field(None, validation_alias="SMKI_DEVICECSR_GATE")
    """``module:factory`` building the Device CSR gate from the Instance; unset: the RA."""

    rapp_forms: Folder = Field(PROJECT_ROOT / "rapp_forms", validation_alias="SMKI_RAPP_FORMS")
    """The RAPP form definitions folder."""

    dccboxed: bool = Field(False, validation_alias="SMKI_DCCBOXED")
    """DCC Boxed compatibility: accept DCC Boxed's default Repository API key (``smki serve --dccboxed`` sets
    it for its workers)."""

    def __init__(self, *positional: Any, **values: Any) -> None:
        values.update(zip(_POSITIONAL, positional, strict=False))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _refusal(exc) from None

    @classmethod
    def from_env(cls, instance_dir: str | os.PathLike[str] | None = None,
                 database_url: str | None = None) -> Settings:
        """The environment's settings, with the instance folder or database given here instead of theirs."""
        overrides = {k: v for k, v in (("instance_dir", instance_dir), ("database_url", database_url)) if v}
        return cls(**overrides) if overrides else current_settings()

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets ``field``."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else PREFIX + field.upper()

    @property
    def ca_dir(self) -> Path:
        return self.instance_dir / "ca"

    @property
    def keystore_dir(self) -> Path:
        return self.instance_dir / "keystore"

    @property
    def keystore_passphrase_bytes(self) -> bytes | None:
        return self.keystore_passphrase.get_secret_value().encode() if self.keystore_passphrase else None


def _refusal(exc: ValidationError) -> ConfigurationError:
    by_name = {Settings.variable(name): name for name in Settings.model_fields} | {n: n for n in Settings.model_fields}
    problems = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        variable = Settings.variable(by_name[name]) if name in by_name else name
        message = error["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        if error["type"] == "bool_parsing":
            message = "true or false (also 1/0, yes/no, on/off)"
        found = "" if by_name.get(name) == "keystore_passphrase" else f", found {error.get('input')!r}"
        problems.append(f"{variable}: expected {message}{found}")
    return ConfigurationError(BAD_SETTING, "; ".join(problems))


@lru_cache(maxsize=8)
def _settings_for(environment: frozenset[tuple[str, str]]) -> Settings:
    return Settings()


def current_settings() -> Settings:
    """This process's settings, read from the environment once (and again only if the process changes its
    own ``SMKI_*`` variables, as ``smki serve --dccboxed`` does for its workers, or a test does)."""
    return _settings_for(frozenset((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))


