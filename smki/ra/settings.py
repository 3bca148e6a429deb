"""The RA's policy files: ``policies/eligibility.yaml`` (who may obtain what) and ``policies/ra.yaml``
(allocation, tokens, IKI CA, revocation reasons). Both are data a policy authority can change."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from smki.core.errors import ConfigurationError
from smki.core.policy import load_yaml


@dataclass(frozen=True)
class OrganisationRoleRule:
    role: str                      # Remote Party Role name (roles.yaml)
    rule: str                      # rule name recorded in decisions
    user_roles: tuple[str, ...]
    authorised_parties: tuple[str, ...] = ()


@dataclass(frozen=True)
class Eligibility:
    party_categories: tuple[str, ...]
    non_party_categories: tuple[str, ...]
    user_roles: tuple[str, ...]
    require_srept: bool
    organisation_roles: dict[str, OrganisationRoleRule]
    dcc_only_rule: str
    dcc_only_roles: tuple[str, ...]
    device_require_authorised: bool
    max_certificates_per_device: int
    provisioning_states: dict[str, tuple[str, ...]]
    manufacturer_direct_issuance: bool
    ad_hoc_user_roles: tuple[str, ...]
    ad_hoc_dcc: bool
    ad_hoc_replacement_only: bool
    codes: dict[str, str]

    def code(self, rule: str) -> str:
        try:
            return self.codes[rule]
        except KeyError as exc:
            raise ConfigurationError("CA:CFG4", f"policies/eligibility.yaml gives no code for rule {rule}") from exc


@dataclass(frozen=True)
class RaSettings:
    eligibility: Eligibility
    user_id_prefix: str
    api_token_bytes: int
    iki: dict[str, Any]
    revocation_requesters: tuple[str, ...]
    revocation_reasons: dict[str, str]


@cache
def load_ra_settings(policies_dir: Path) -> RaSettings:
    data = load_yaml(policies_dir / "eligibility.yaml")
    try:
        org, device = data["organisation"], data["device"]
        roles = {name: OrganisationRoleRule(name, spec["rule"], tuple(spec.get("user_roles", ())),
                                            tuple(spec.get("authorised_parties", ())))
                 for name, spec in org["remote_party_roles"].items()}
        eligibility = Eligibility(
            party_categories=tuple(data["party_categories"]),
            non_party_categories=tuple(data["non_party_categories"]),
            user_roles=tuple(data["user_roles"]),
            require_srept=bool(org["require_srept"]),
            organisation_roles=roles,
            dcc_only_rule=org["dcc_only"]["rule"],
            dcc_only_roles=tuple(org["dcc_only"]["roles"]),
            device_require_authorised=bool(device["require_authorised_subscriber"]),
            max_certificates_per_device=int(device["max_certificates_per_device"]),
            provisioning_states={k: tuple(v) for k, v in device["provisioning_states"].items()},
            manufacturer_direct_issuance=bool(device["manufacturer_direct_issuance"]),
            ad_hoc_user_roles=tuple(device["ad_hoc"]["user_roles"]),
            ad_hoc_dcc=bool(device["ad_hoc"]["dcc"]),
            ad_hoc_replacement_only=bool(device["ad_hoc"]["replacement_only"]),
            codes=dict(data["codes"]),
        )
        ra = load_yaml(policies_dir / "ra.yaml")
        return RaSettings(eligibility, ra["user_id_prefix"].upper(), int(ra["api_token_bytes"]), dict(ra["iki"]),
                          tuple(ra["revocation_requesters"]), dict(ra["revocation_reasons"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError("CA:CFG3", f"the RA policy files in {policies_dir} are incomplete: {exc!r}") from exc
