"""The Repository's settings, read from ``policies/repository.yaml`` (policy is data).

The schema, its defaults and checks are in :mod:`smki.core.policyfiles.repository`; each section reads as
attributes (``settings.access.lockout_failures``).
"""

from __future__ import annotations

from smki.core.config import current_settings
from smki.core.policy import load_repository_settings
from smki.core.policyfiles.repository import KINDS, RFC5280_REASONS, RepositorySettings

__all__ = ["KINDS", "RFC5280_REASONS", "RepositorySettings", "default_settings", "load_repository_settings"]


def default_settings() -> RepositorySettings:
    """For a store built without settings: the policy folder the process is configured with."""
    return load_repository_settings(current_settings().policies_dir)
