"""The CA lints what it signed before release (policies/issuance.yaml); a faulty profile releases nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

import smki.issuance
from smki.ca.builder import ProfileBuilder
from smki.core.config import Settings
from smki.core.errors import ConfigurationError, IssuanceFailed
from smki.instance import Instance
from smki.issuance import IssuanceService
from smki.models import IssuanceRecord
from tests.ca import craft


def ledger_count(instance: Instance) -> int:
    with instance.database.session() as session:
        return session.scalar(select(func.count()).select_from(IssuanceRecord)) or 0


@pytest.fixture
def broken_profile_instance(instance: Instance, tmp_path: Path) -> Instance:
    """The same instance, but its Organisation profile wrongly makes keyUsage non-critical."""
    policies = tmp_path / "policies"
    shutil.copytree(instance.settings.policies_dir, policies)
    profile_path = policies / "profiles" / "organisation.yaml"
    profile = yaml.safe_load(profile_path.read_text())
    profile["extensions"][0]["critical"] = False
    profile_path.write_text(yaml.safe_dump(profile))
    settings = instance.settings
    return Instance(Settings(settings.instance_dir, settings.database_url, policies, None))


def test_a_profile_that_contradicts_gbcs_is_refused(broken_profile_instance):
    service = IssuanceService(broken_profile_instance.ca, broken_profile_instance.database,
                              broken_profile_instance.policies)

    with pytest.raises(ConfigurationError) as caught:
        service.issue_from_csr(craft.organisation(craft.p256("lint")), channel="api")

    assert caught.value.code == "CA:CFG11"
    assert "keyUsage" in caught.value.message
    assert ledger_count(broken_profile_instance) == 0


def test_a_certificate_that_breaks_the_profile_is_not_released(instance, monkeypatch):
    """A builder bug (here: the SKI dropped) is caught by the lint before release, not by a meter."""
    original = ProfileBuilder._extension

    def drop_ski(self, spec, request, ski):  # type: ignore[no-untyped-def]
        return None if spec.type == "subjectKeyIdentifier" else original(self, spec, request, ski)

    monkeypatch.setattr(ProfileBuilder, "_extension", drop_ski)
    service = IssuanceService(instance.ca, instance.database, instance.policies)

    with pytest.raises(IssuanceFailed) as caught:
        service.issue_from_csr(craft.organisation(craft.p256("lint4")), channel="api")

    assert caught.value.code == "CA:E207"
    assert "LN:EXT03" in caught.value.message  # the missing extension, named for the operator
    assert ledger_count(instance) == 0


def test_the_policy_decides_which_profiles_are_linted(instance, monkeypatch):
    checked: list[str] = []
    monkeypatch.setattr(smki.issuance, "release_check",
                        lambda certificate, profile, policies, der=None: checked.append(profile))
    service = IssuanceService(instance.ca, instance.database, instance.policies)

    service.issue_from_csr(craft.organisation(craft.p256("lint2")), channel="api")
    service.issue_from_csr(craft.device(craft.p256("lint3")), channel="api")

    assert checked == ["organisation"]  # device: false in policies/issuance.yaml
    assert ledger_count(instance) == 2
