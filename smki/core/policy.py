"""The policy folder (``policies/``), read into typed, validated objects, each file once per folder.

:func:`load_policies` gives what every request needs at once (the environment, the Remote Party Roles,
the CSR rules) and reads every other file the first time it is asked for. :func:`validate_policies` reads
them all now: ``smki serve`` and ``smki init`` call it, so a bad file stops the start with a coded
:class:`ConfigurationError` naming the file, the key and what was expected, instead of failing a request
later. The schema of each file is in :mod:`smki.core.policyfiles`; ``docs/configuration.md`` describes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from smki.core.config import BAD_SETTING
from smki.core.errors import ConfigurationError, Finding
from smki.core.policyfiles.base import (
    FILE_MISSING,
    NOT_AS_DESCRIBED,
    NOT_YAML,
    PolicyContext,
    load_yaml,
    parse_policy,
    read_policy_file,
)
from smki.core.policyfiles.custody import CustodyPolicy
from smki.core.policyfiles.devicecsr import MAX_CERTIFICATES, DeviceCsrGatePolicy, DeviceCsrLimits
from smki.core.policyfiles.environment import (
    KEY_USAGES,
    ActiveEnvironment,
    CsrPolicy,
    Environment,
    RemotePartyRole,
    RoleCatalogue,
)
from smki.core.policyfiles.estate import DCC_IDENTIFIERS, ROLE_NAMES, USER_ROLES, EstatePolicy
from smki.core.policyfiles.profiles import (
    CERTIFICATE_PROFILES,
    CRL_PROFILES,
    CertificateProfile,
    CrlProfile,
    IssuancePolicy,
)
from smki.core.policyfiles.ra import END_ENTITY_ROLES, REPOSITORY_REASONS, ROLES, Eligibility, RaPolicy
from smki.core.policyfiles.recovery import load_scenario, scenario_names
from smki.core.policyfiles.repository import RepositorySettings
from smki.core.policyfiles.srept import PARTY_CATEGORIES, InterfaceCatalogue, Recording, SreptCatalogue
from smki.core.policyfiles.srept import USER_ROLES as SREPT_USER_ROLES
from smki.core.policyfiles.variance import VariancePolicy

__all__ = [
    "FILE_MISSING", "KEY_USAGES", "NOT_AS_DESCRIBED", "NOT_YAML", "CsrPolicy", "Environment", "Policies",
    "RemotePartyRole", "RoleCatalogue", "load_policies", "load_yaml", "parse_policy", "validate_policies",
]

DEVICE_CSR_LIMITS = "CA:CFG21"


def _environment_names(directory: Path) -> frozenset[str]:
    return frozenset(path.stem for path in (directory / "environments").glob("*.yaml"))


@cache
def load_active_environment_name(directory: Path) -> str:
    context = PolicyContext("environment", {"environments": _environment_names(directory)})
    return read_policy_file(directory / "environment.yaml", ActiveEnvironment, context=context).active


def load_environment(directory: Path, name: str | None = None) -> Environment:
    """``environments/<name>.yaml``; with no name, the one ``environment.yaml`` makes active."""
    return _load_environment(directory, name or load_active_environment_name(directory))


@cache
def _load_environment(directory: Path, name: str) -> Environment:
    if name not in _environment_names(directory):
        raise ConfigurationError(BAD_SETTING, f"SMKI_ENVIRONMENT: expected one of the environments in "
                                 f"{directory / 'environments'} ({', '.join(sorted(_environment_names(directory)))}),"
                                 f" found {name!r}")
    return read_policy_file(directory / "environments" / f"{name}.yaml", Environment)


@cache
def load_roles(directory: Path) -> RoleCatalogue:
    return read_policy_file(directory / "roles.yaml", RoleCatalogue)


@cache
def load_csr_policy(directory: Path) -> CsrPolicy:
    return read_policy_file(directory / "csr.yaml", CsrPolicy)


@cache
def load_issuance_policy(directory: Path) -> IssuancePolicy:
    return read_policy_file(directory / "issuance.yaml", IssuancePolicy, optional=True)


@cache
def load_certificate_profile(directory: Path, name: str) -> CertificateProfile:
    return read_policy_file(directory / "profiles" / f"{name}.yaml", CertificateProfile)


@cache
def load_crl_profile(directory: Path, name: str) -> CrlProfile:
    return read_policy_file(directory / "profiles" / f"{name}.yaml", CrlProfile)


@cache
def load_eligibility(directory: Path) -> Eligibility:
    roles = load_roles(directory)
    context = PolicyContext("eligibility", {ROLES: roles.names, END_ENTITY_ROLES: roles.end_entity_names})
    return read_policy_file(directory / "eligibility.yaml", Eligibility, context=context)


@cache
def load_repository_settings(directory: Path) -> RepositorySettings:
    return read_policy_file(directory / "repository.yaml", RepositorySettings)


@cache
def load_ra_policy(directory: Path) -> RaPolicy:
    reasons = load_repository_settings(directory).revocation_reasons
    context = PolicyContext("ra", {REPOSITORY_REASONS: frozenset(reasons)})
    return read_policy_file(directory / "ra.yaml", RaPolicy, context=context)


@cache
def load_device_csr_limits(directory: Path) -> DeviceCsrLimits:
    limit = load_eligibility(directory).max_certificates_per_device
    context = PolicyContext("device_csr_limits", {MAX_CERTIFICATES: (limit,)})
    return read_policy_file(directory / "device_csr_limits.yaml", DeviceCsrLimits, code=DEVICE_CSR_LIMITS,
                            context=context)


@cache
def load_device_csr_gate(directory: Path) -> DeviceCsrGatePolicy:
    return read_policy_file(directory / "device_csr_gate.yaml", DeviceCsrGatePolicy, optional=True)


@cache
def load_estate_policy(directory: Path, environment: str) -> EstatePolicy:
    context = PolicyContext("estate", {ROLE_NAMES: load_roles(directory).names,
                                       USER_ROLES: load_eligibility(directory).user_roles,
                                       DCC_IDENTIFIERS: load_environment(directory, environment)
                                       .dcc_entity_identifiers.keys()})
    return read_policy_file(directory / "estate.yaml", EstatePolicy, context=context)


@cache
def load_variance_policy(directory: Path) -> VariancePolicy:
    return read_policy_file(directory / "variance.yaml", VariancePolicy, optional=True)


@cache
def load_custody_policy(directory: Path) -> CustodyPolicy:
    return read_policy_file(directory / "custody.yaml", CustodyPolicy, optional=True)


@cache
def load_srept_catalogue(directory: Path) -> SreptCatalogue:
    """``srept/``: ``recording.yaml`` and one scenario file per interface (none: an empty catalogue)."""
    folder = directory / "srept"
    rules = load_eligibility(directory)
    context = PolicyContext("srept", {PARTY_CATEGORIES: rules.party_categories, SREPT_USER_ROLES: rules.user_roles})
    recording = read_policy_file(folder / "recording.yaml", Recording, optional=True)
    interfaces = tuple(read_policy_file(path, InterfaceCatalogue, context=context)
                       for path in sorted(folder.glob("*.yaml")) if path.name != "recording.yaml")
    return parse_policy({"recording": recording, "interfaces": interfaces}, folder, SreptCatalogue, context=context)


@dataclass(frozen=True)
class Policies:
    """One policy folder under one environment. Files other than the first four are read when first asked
    for, once per folder; :func:`validate_policies` asks for them all."""

    directory: Path
    environment: Environment
    roles: RoleCatalogue
    csr: CsrPolicy

    def path(self, *parts: str) -> Path:
        return self.directory.joinpath(*parts)

    @property
    def issuance(self) -> IssuancePolicy:
        """``issuance.yaml``: ``.lint_before_release`` (profile -> bool), ``.linted_profiles``."""
        return load_issuance_policy(self.directory)

    @property
    def eligibility(self) -> Eligibility:
        """``eligibility.yaml``, e.g. ``.max_certificates_per_device``."""
        return load_eligibility(self.directory)

    @property
    def ra(self) -> RaPolicy:
        return load_ra_policy(self.directory)

    @property
    def repository(self) -> RepositorySettings:
        return load_repository_settings(self.directory)

    @property
    def device_csr_limits(self) -> DeviceCsrLimits:
        return load_device_csr_limits(self.directory)

    @property
    def device_csr_gate(self) -> DeviceCsrGatePolicy:
        return load_device_csr_gate(self.directory)

    @property
    def estate(self) -> EstatePolicy:
        """``estate.yaml``: the simulated device estate (smki.estate)."""
        return load_estate_policy(self.directory, self.environment.name)

    @property
    def variance(self) -> VariancePolicy:
        return load_variance_policy(self.directory)

    @property
    def custody(self) -> CustodyPolicy:
        """``custody.yaml``: the Key Custodians' quorum (smki.recovery)."""
        return load_custody_policy(self.directory)

    @property
    def srept(self) -> SreptCatalogue:
        """``srept/``: the SREPT scenario catalogue (smki.srept)."""
        return load_srept_catalogue(self.directory)

    def certificate_profile(self, name: str) -> CertificateProfile:
        return load_certificate_profile(self.directory, name)

    def crl_profile(self, name: str) -> CrlProfile:
        return load_crl_profile(self.directory, name)


def load_policies(directory: Path, environment: str | None = None) -> Policies:
    return _load_policies(directory, environment)  # one cache entry however the arguments are spelt


@cache
def _load_policies(directory: Path, environment: str | None) -> Policies:
    return Policies(directory, load_environment(directory, environment), load_roles(directory),
                    load_csr_policy(directory))


def validate_policies(directory: Path, environment: str | None = None) -> Policies:
    """Read and cross-check every file in the policy folder now, and report every bad one at once."""
    checks: list[Callable[[], Any]] = [
        lambda: load_policies(directory, environment),
        *[lambda name=name: load_environment(directory, name) for name in sorted(_environment_names(directory))],
        *[lambda name=name: load_certificate_profile(directory, name) for name in CERTIFICATE_PROFILES],
        *[lambda name=name: load_crl_profile(directory, name) for name in CRL_PROFILES],
        lambda: load_issuance_policy(directory),
        lambda: load_eligibility(directory),
        lambda: load_repository_settings(directory),
        lambda: load_ra_policy(directory),
        lambda: load_device_csr_limits(directory),
        lambda: load_device_csr_gate(directory),
        lambda: load_custody_policy(directory),
        lambda: load_srept_catalogue(directory),
        *[lambda name=name: load_scenario(directory, name) for name in scenario_names(directory)],
        lambda: load_estate_policy(directory, load_policies(directory, environment).environment.name),
    ]
    failures: list[ConfigurationError] = []
    for check in checks:
        try:
            check()
        except ConfigurationError as error:
            # a file another depends on fails both: say it once
            if all(error.message != seen.message for seen in failures):
                failures.append(error)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        details: list[Finding] = []
        for failure in failures:
            details.extend(failure.details or [Finding(failure.code, failure.message)])
        raise ConfigurationError(failures[0].code, f"{len(failures)} policy files in {directory} are not as "
                                 "described in docs/configuration.md: " + " | ".join(f.message for f in failures),
                                 details=details)
    return load_policies(directory, environment)
