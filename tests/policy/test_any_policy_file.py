"""Whatever a policy file holds, reading it either gives its typed model or a coded ConfigurationError:
never a KeyError, TypeError or ValueError from deep inside, and never a model that breaks the file's rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import CODE_PATTERN, ConfigurationError
from smki.core.policy import load_policies, parse_policy
from smki.core.policyfiles.base import PolicyContext, PolicyModel, read_policy_file
from smki.core.policyfiles.devicecsr import MAX_CERTIFICATES, DeviceCsrGatePolicy, DeviceCsrLimits
from smki.core.policyfiles.environment import ActiveEnvironment, CsrPolicy, Environment, RoleCatalogue
from smki.core.policyfiles.profiles import CertificateProfile, CrlProfile, IssuancePolicy
from smki.core.policyfiles.ra import END_ENTITY_ROLES, REPOSITORY_REASONS, ROLES, Eligibility, RaPolicy
from smki.core.policyfiles.repository import RepositorySettings

SHIPPED = load_policies(DEFAULT_POLICIES_DIR)
# every file, its model, and what it is cross-checked against (as smki.core.policy's loaders do)
FILES: dict[str, tuple[type[PolicyModel], PolicyContext]] = {
    "environment.yaml": (ActiveEnvironment, PolicyContext("environment", {"environments": {"test"}})),
    "environments/test.yaml": (Environment, PolicyContext("test")),
    "roles.yaml": (RoleCatalogue, PolicyContext("roles")),
    "csr.yaml": (CsrPolicy, PolicyContext("csr")),
    "issuance.yaml": (IssuancePolicy, PolicyContext("issuance")),
    "profiles/organisation.yaml": (CertificateProfile, PolicyContext("organisation")),
    "profiles/root_oca.yaml": (CertificateProfile, PolicyContext("root_oca")),
    "profiles/device.yaml": (CertificateProfile, PolicyContext("device")),
    "profiles/crl.yaml": (CrlProfile, PolicyContext("crl")),
    "eligibility.yaml": (Eligibility, PolicyContext("eligibility", {
        ROLES: SHIPPED.roles.names, END_ENTITY_ROLES: SHIPPED.roles.end_entity_names})),
    "ra.yaml": (RaPolicy, PolicyContext("ra", {REPOSITORY_REASONS: frozenset(SHIPPED.repository.revocation_reasons)})),
    "repository.yaml": (RepositorySettings, PolicyContext("repository")),
    "device_csr_limits.yaml": (DeviceCsrLimits, PolicyContext("device_csr_limits", {MAX_CERTIFICATES: (100,)})),
    "device_csr_gate.yaml": (DeviceCsrGatePolicy, PolicyContext("device_csr_gate")),
}

# What yaml.safe_load can give: scalars (dates included), lists and mappings, nested.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.dates(),
                    st.sampled_from(["07:00", "90B3D51F30000001", "1.2.3", "crl", "supplier", "IS", "IN:ORG01",
                                     "Europe/London", "keyCompromise", "true", "100"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.none()), inner, max_size=4)), max_leaves=12)


def shipped(file: str) -> Any:
    return yaml.safe_load((DEFAULT_POLICIES_DIR / file).read_text(encoding="utf-8"))


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``data``."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def policy_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """A policy file's data: random, or the shipped file with one value replaced, one key dropped or added."""
    file = draw(st.sampled_from(sorted(FILES)))
    model = FILES[file][0]
    how = draw(st.sampled_from(["random", "replace", "drop", "add"]))
    if how == "random":
        keys = st.one_of(st.sampled_from(sorted(model.model_fields)), st.text(max_size=12))
        return file, draw(st.dictionaries(keys, values, max_size=6))
    data = shipped(file)
    where = draw(st.sampled_from(paths(data) or [()]))
    parent = data
    for part in where[:-1]:
        parent = parent[part]
    if how == "replace" and where:
        parent[where[-1]] = draw(values)
    elif how == "drop" and where:
        del parent[where[-1]]
    else:
        target = parent[where[-1]] if where else data
        if isinstance(target, dict):
            target[draw(st.text(max_size=12))] = draw(values)
    return file, data


def read(file: str, data: Any) -> PolicyModel | None:
    model, context = FILES[file]
    try:
        return parse_policy(data, DEFAULT_POLICIES_DIR / file, model, context=context)
    except ConfigurationError as error:
        assert CODE_PATTERN.match(error.code) and str(DEFAULT_POLICIES_DIR / file) in error.message
        assert error.details or "expected a mapping" in error.message
        return None


@settings(max_examples=300, deadline=None)
@given(policy_documents())
def test_any_mapping_loads_or_is_refused_with_a_coded_error(document: tuple[str, Any]) -> None:
    file, data = document
    loaded = read(file, data)
    if loaded is not None:
        # what loads satisfies the file's own rules, and reads back the same
        assert list(loaded.problems(FILES[file][1])) == []
        assert type(loaded).model_validate(loaded.model_dump(by_alias=True)) == loaded


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("ab: -[]{}!&*#'\"\n\t.,0123456789%|>?@`\\")), max_size=60)
       | st.sampled_from(["a: 2024-13-45\n", "a: !!int abc\n", "a: !!float x\n", "a: &x [*x]\n",
                          "a: !!python/name:os.system\n", "\udcff"]))
def test_any_text_is_read_or_refused_with_a_coded_error(scratch: Path, text: str) -> None:
    path = scratch / "csr.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    try:
        read_policy_file(path, CsrPolicy)
    except ConfigurationError as error:
        assert error.code in ("CA:CFG2", "CA:CFG3") and str(path) in error.message


def test_the_shipped_files_read_back_unchanged() -> None:
    for file, (model, context) in FILES.items():
        loaded = parse_policy(shipped(file), DEFAULT_POLICIES_DIR / file, model, context=context)
        assert model.model_validate(loaded.model_dump(by_alias=True)) == loaded
    assert SHIPPED.environment.ca_names["issuing_dca"] == "S357"
    assert dt.time(7) == load_policies(DEFAULT_POLICIES_DIR).device_csr_limits.limits.core_hours.start
