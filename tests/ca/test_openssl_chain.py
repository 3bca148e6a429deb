"""An independent verifier accepts the sandbox's chains: ``openssl verify -x509_strict -explicit_policy``.

The required policy is the environment's, so the test also proves the policy OIDs are carried through
the whole path; with any other policy required, the same chain must be refused.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from smki.instance import Instance
from smki.issuance import IssuanceService
from tests.ca import craft

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")


def verify(leaf: Path, root: Path, intermediate: Path, policy: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENSSL, "verify", "-x509_strict", "-policy", policy, "-explicit_policy",  # type: ignore[list-item]
                           "-CAfile", str(root), "-untrusted", str(intermediate), str(leaf)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def chains(instance: Instance, tmp_path: Path) -> dict[str, Path]:
    service = IssuanceService(instance.ca, instance.database, instance.policies)
    out = {}
    for name, raw in {
        "organisation_ds": craft.organisation(craft.p256("o1"), "02", "digitalSignature", "Acme Energy"),
        "organisation_ka": craft.organisation(craft.p256("o2"), "03", "keyAgreement"),
        "device_ds": craft.device(craft.p256("d1"), "digitalSignature"),
        "device_ka": craft.device(craft.p256("d2"), "keyAgreement"),
    }.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(service.issue_from_csr(raw, channel="operator", requested_by="test").pem)
        out[name] = path
    return out


@pytest.mark.parametrize("leaf", ["organisation_ds", "organisation_ka"])
def test_openssl_accepts_the_organisation_chain_under_the_organisation_policy(instance, chains, leaf):
    hierarchy = instance.hierarchy
    policy = instance.policies.environment.organisation_policy.dotted_string
    result = verify(chains[leaf], hierarchy.path("root_oca"), hierarchy.path("issuing_oca"), policy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.parametrize("leaf", ["device_ds", "device_ka"])
def test_openssl_accepts_the_device_chain_under_the_device_policy(instance, chains, leaf):
    hierarchy = instance.hierarchy
    policy = instance.policies.environment.device_policy.dotted_string
    result = verify(chains[leaf], hierarchy.path("root_dca"), hierarchy.path("issuing_dca"), policy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("leaf", "root", "intermediate"), [
    ("organisation_ds", "root_oca", "issuing_oca"), ("device_ka", "root_dca", "issuing_dca")])
def test_openssl_refuses_the_chain_when_another_policy_is_required(instance, chains, leaf, root, intermediate):
    environment = instance.policies.environment
    # the other PKI's policy: a real OID of the environment, just not this chain's
    other = (environment.device_policy if leaf.startswith("organisation") else environment.organisation_policy)
    for policy in (other.dotted_string, "1.2.826.0.1.8641679.1.2.1.99"):
        result = verify(chains[leaf], instance.hierarchy.path(root), instance.hierarchy.path(intermediate), policy)
        assert result.returncode != 0
        assert "no explicit policy" in result.stdout + result.stderr


def test_openssl_refuses_an_organisation_certificate_against_the_device_hierarchy(instance, chains):
    hierarchy = instance.hierarchy
    result = verify(chains["organisation_ds"], hierarchy.path("root_dca"), hierarchy.path("issuing_dca"),
                    instance.policies.environment.organisation_policy.dotted_string)
    assert result.returncode != 0
