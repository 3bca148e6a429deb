"""docs/configuration.md names every variable and every key the code reads, and the README and policies/README
name no variable the code does not read."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from smki.core.config import PROJECT_ROOT, Settings
from smki.core.policyfiles import custody, devicecsr, environment, estate, profiles, ra, repository, srept, variance

REFERENCE = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
TEST_ONLY = {"SMKI_TEST_POSTGRES_URL", "SMKI_INTEROP_DIR"}
SERVE_OPTIONS = {"SMKI_WEB_WORKERS", "SMKI_WEB_THREADS", "SMKI_BATCH_WORKERS"}  # click options of smki serve
FILES: dict[str, type[BaseModel]] = {
    "environment.yaml": environment.ActiveEnvironment,
    "environments/<name>.yaml": environment.Environment,
    "roles.yaml": environment.RoleCatalogue,
    "csr.yaml": environment.CsrPolicy,
    "issuance.yaml": profiles.IssuancePolicy,
    "profiles/<certificate>.yaml": profiles.CertificateProfile,
    "profiles/crl.yaml, profiles/arl.yaml": profiles.CrlProfile,
    "eligibility.yaml": ra.Eligibility,
    "ra.yaml": ra.RaPolicy,
    "repository.yaml": repository.RepositorySettings,
    "device_csr_limits.yaml": devicecsr.DeviceCsrLimits,
    "device_csr_gate.yaml": devicecsr.DeviceCsrGatePolicy,
    "estate.yaml": estate.EstatePolicy,
    "variance.yaml": variance.VariancePolicy,
    "custody.yaml": custody.CustodyPolicy,
    "srept/recording.yaml": srept.Recording,
    "srept/<interface>.yaml": srept.InterfaceCatalogue,
}


def keys(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key path of a model, as the reference spells it (``a.b``, ``a[].b``, ``a.<name>.b``)."""
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        yield key
        annotation, suffix = field.annotation, ""
        while True:
            while typing.get_origin(annotation) is typing.Annotated:
                annotation = typing.get_args(annotation)[0]
            origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
            if origin in (tuple, list):
                annotation, suffix = arguments[0], suffix + "[]"
            elif origin is dict:
                annotation, suffix = arguments[1], suffix + ".<name>"
            elif arguments:  # X | None
                annotation = next((a for a in arguments if isinstance(a, type) and issubclass(a, BaseModel)), None)
                suffix = suffix if annotation else ""
                if annotation is None:
                    break
            else:
                break
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from keys(annotation, key + suffix + ".")


def section(file: str) -> str:
    match = re.search(rf"^### `{re.escape(file)}`\n(.*?)(?=^### |\Z)", REFERENCE, re.M | re.S)
    assert match, f"docs/configuration.md has no section for {file}"
    return match.group(1)


def test_every_variable_is_in_the_reference() -> None:
    for field in Settings.model_fields:
        assert f"| `{Settings.variable(field)}` |" in REFERENCE, Settings.variable(field)


@pytest.mark.parametrize("file", FILES)
def test_every_key_of_every_policy_file_is_in_the_reference(file: str) -> None:
    text = section(file)
    missing = [key for key in keys(FILES[file]) if f"| `{key}` |" not in text]
    assert missing == []


def test_every_shipped_policy_file_has_a_section() -> None:
    names = {path.relative_to(PROJECT_ROOT / "policies").as_posix() for path in (PROJECT_ROOT / "policies").rglob(
        "*.yaml")}
    covered = {"environment.yaml", "roles.yaml", "csr.yaml", "issuance.yaml", "eligibility.yaml", "ra.yaml",
               "repository.yaml", "device_csr_limits.yaml", "device_csr_gate.yaml", "estate.yaml",
               "variance.yaml", "custody.yaml"}
    assert {n for n in names if "/" not in n} == covered
    assert {n.split("/")[0] for n in names if "/" in n} == {"environments", "profiles", "recovery", "srept"}


@pytest.mark.parametrize("document", ["README.md", "policies/README.md", "docs/configuration.md", "docs/serving.md"])
def test_the_documents_name_only_variables_the_sandbox_reads(document: str) -> None:
    text = (PROJECT_ROOT / document).read_text(encoding="utf-8")
    named = set(re.findall(r"\bSMKI_[A-Z_]+[A-Z]\b", text))
    read = {Settings.variable(field) for field in Settings.model_fields} | TEST_ONLY | SERVE_OPTIONS
    assert named - read == set()
