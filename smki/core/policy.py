"""Reads the policy files in ``policies/``: the environment, the Remote Party Roles, CSR rules.

Certificate profiles are read by :mod:`smki.ca.profile`, because only the CA uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from smki.core.errors import ConfigurationError
from smki.core.eui64 import Eui64

KEY_USAGES = ("digitalSignature", "keyAgreement")


def load_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise ConfigurationError("CA:CFG1", f"policy file {path} is missing") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError("CA:CFG2", f"policy file {path} is not valid YAML: {exc}") from exc


@dataclass(frozen=True)
class Environment:
    name: str
    organisation_policy: x509.ObjectIdentifier
    device_policy: x509.ObjectIdentifier
    hardware_module_type: x509.ObjectIdentifier
    ca_names: dict[str, str]
    dcc_entity_identifiers: dict[str, Eui64]

    def policy_oid(self, which: str) -> x509.ObjectIdentifier:
        return {"organisation": self.organisation_policy, "device": self.device_policy}[which]


@dataclass(frozen=True)
class RemotePartyRole:
    code: int
    ou: str
    name: str
    usages: tuple[str, ...]
    ca: bool

    @property
    def end_entity(self) -> bool:
        return not self.ca


@dataclass(frozen=True)
class RoleCatalogue:
    roles: tuple[RemotePartyRole, ...]

    def by_ou(self, ou: str) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.ou == ou), None)

    def by_name(self, name: str) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.name == name), None)

    def by_code(self, code: int) -> RemotePartyRole | None:
        return next((r for r in self.roles if r.code == code), None)


@dataclass(frozen=True)
class CsrPolicy:
    max_size_bytes: int
    curve: str
    point_format: str
    signature_algorithm: str
    pem_labels: tuple[str, ...]


@dataclass(frozen=True)
class Policies:
    directory: Path
    environment: Environment
    roles: RoleCatalogue
    csr: CsrPolicy

    def path(self, *parts: str) -> Path:
        return self.directory.joinpath(*parts)


def _environment(directory: Path, name: str | None) -> Environment:
    active = name or load_yaml(directory / "environment.yaml")["active"]
    data = load_yaml(directory / "environments" / f"{active}.yaml")
    oids = data["policy_oids"]
    return Environment(
        name=data["name"],
        organisation_policy=x509.ObjectIdentifier(oids["organisation"]),
        device_policy=x509.ObjectIdentifier(oids["device"]),
        hardware_module_type=x509.ObjectIdentifier(data["hardware_module_type"]),
        ca_names=dict(data["ca_names"]),
        dcc_entity_identifiers={k: Eui64.parse(v) for k, v in data["dcc_entity_identifiers"].items()},
    )


@cache
def load_policies(directory: Path, environment: str | None = None) -> Policies:
    roles = tuple(
        RemotePartyRole(r["code"], r["ou"], r["name"], tuple(r.get("usages", ())), bool(r.get("ca", False)))
        for r in load_yaml(directory / "roles.yaml")["roles"]
    )
    csr = load_yaml(directory / "csr.yaml")
    return Policies(
        directory=directory,
        environment=_environment(directory, environment),
        roles=RoleCatalogue(roles),
        csr=CsrPolicy(csr["max_size_bytes"], csr["curve"], csr["point_format"],
                      csr["signature_algorithm"], tuple(csr["pem_labels"])),
    )
