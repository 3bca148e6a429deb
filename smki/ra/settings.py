"""The RA's policy files: ``policies/eligibility.yaml`` (who may obtain what) and ``policies/ra.yaml``
(allocation, tokens, IKI CA, revocation reasons). Both are data a policy authority can change; their
schemas and cross-checks (every role named exists in roles.yaml, every reason in repository.yaml) are in
:mod:`smki.core.policyfiles.ra`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smki.core.policy import load_eligibility, load_ra_policy
from smki.core.policyfiles.ra import Eligibility, IkiCa, OrganisationRoleRule

__all__ = ["Eligibility", "OrganisationRoleRule", "RaSettings", "load_ra_settings"]


@dataclass(frozen=True)
class RaSettings:
    eligibility: Eligibility
    user_id_prefix: str
    api_token_bytes: int
    iki: IkiCa
    revocation_requesters: tuple[str, ...]
    revocation_reasons: Mapping[str, str]


@cache
def load_ra_settings(policies_dir: Path) -> RaSettings:
    ra = load_ra_policy(policies_dir)
    return RaSettings(load_eligibility(policies_dir), ra.user_id_prefix.upper(), ra.api_token_bytes, ra.iki,
                      ra.revocation_requesters, ra.revocation_reasons)
