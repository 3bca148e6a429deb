"""``smki init`` and ``smki serve`` stop at start on a bad policy folder or a bad SMKI_* variable, with the
coded error on stderr and nothing created; the shipped folder, in every environment, starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smki.cli import main
from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.policy import load_policies, validate_policies
from tests.policy.conftest import rewrite


@pytest.fixture
def env(tmp_path: Path, database_url: str, policies: Path) -> dict[str, str | None]:
    return {"SMKI_INSTANCE": str(tmp_path / "instance"), "SMKI_DATABASE_URL": database_url,
            "SMKI_POLICIES": str(policies), "SMKI_ENVIRONMENT": None, "SMKI_KEYSTORE_PASSPHRASE": None}


def break_eligibility(policies: Path) -> None:
    def misspell(data: dict[str, Any]) -> None:
        data["device"]["max_certificates_per_devce"] = data["device"].pop("max_certificates_per_device")
    rewrite(policies, "eligibility.yaml", misspell)


@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "1", "--no-worker"]])
def test_a_bad_policy_file_stops_the_start(env: dict[str, str | None], policies: Path, command: list[str]) -> None:
    break_eligibility(policies)

    result = CliRunner().invoke(main, command, env=env)

    assert result.exit_code == 2, result.output
    assert "error CA:CFG3: " in result.stderr
    assert f"{policies / 'eligibility.yaml'}" in result.stderr
    assert "device.max_certificates_per_devce: unknown key" in result.stderr
    assert not Path(env["SMKI_INSTANCE"] or "").exists()  # stopped before anything was created


def test_a_bad_variable_stops_the_start(env: dict[str, str | None]) -> None:
    result = CliRunner().invoke(main, ["init"], env={**env, "SMKI_DCCBOXED": "sometimes"})

    assert result.exit_code == 2
    assert "error CA:CFG13: SMKI_DCCBOXED: expected true or false" in result.stderr
    assert not Path(env["SMKI_INSTANCE"] or "").exists()


def test_an_environment_that_does_not_exist_stops_the_start(env: dict[str, str | None]) -> None:
    result = CliRunner().invoke(main, ["init"], env={**env, "SMKI_ENVIRONMENT": "producton-like"})

    assert result.exit_code == 2
    assert "error CA:CFG13: SMKI_ENVIRONMENT: expected one of the environments" in result.stderr
    assert "production-like" in result.stderr


@pytest.mark.parametrize("environment", [None, "test", "production-like"])
def test_the_shipped_policy_folder_validates_in_every_environment(environment: str | None) -> None:
    loaded = validate_policies(DEFAULT_POLICIES_DIR, environment)
    assert loaded.environment.name == (environment or "test")


def test_each_policy_folder_is_read_once(policies: Path) -> None:
    first = validate_policies(policies)
    assert load_policies(policies) is first
    assert first.eligibility is load_policies(policies).eligibility
    assert first.certificate_profile("device") is load_policies(policies).certificate_profile("device")
