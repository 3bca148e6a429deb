"""The Repository's settings, read from ``policies/repository.yaml`` (policy is data)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from smki.core.errors import ConfigurationError
from smki.core.policy import load_yaml

KINDS = ("organisation", "device", "oca", "dca")
# RFC 5280 CRLReason names (as cryptography's ReasonFlags values spell them)
RFC5280_REASONS = ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
                   "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise")


@dataclass(frozen=True)
class RepositorySettings:
    revocation_lists: dict[str, str | None]
    revocation_reasons: dict[str, str]
    publication: dict[str, Any]
    extracts: dict[str, Any]
    access: dict[str, Any]
    web_service: dict[str, Any]
    dccboxed: dict[str, Any]


@cache
def load_repository_settings(policies_dir: Path) -> RepositorySettings:
    data = load_yaml(policies_dir / "repository.yaml")
    unknown = sorted(set(data["revocation_reasons"].values()) - set(RFC5280_REASONS))
    if unknown:
        raise ConfigurationError("CA:CFG10", f"repository.yaml maps revocation reasons to {', '.join(unknown)}, "
                                 f"which RFC 5280 does not define; use one of {', '.join(RFC5280_REASONS)}")
    return RepositorySettings(
        revocation_lists={kind: data["revocation_lists"].get(kind) for kind in KINDS},
        revocation_reasons=dict(data["revocation_reasons"]),
        publication=dict(data["publication"]),
        extracts=dict(data["extracts"]),
        access=dict(data["access"]),
        web_service=dict(data["web_service"]),
        dccboxed=dict(data["dccboxed"]),
    )


def default_settings() -> RepositorySettings:
    """For a store built without settings: the policy folder the process is configured with."""
    from smki.core.config import policies_dir_from_env

    return load_repository_settings(policies_dir_from_env())
