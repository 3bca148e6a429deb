"""A bad policy file is refused when the policy folder is validated (at ``smki serve`` / ``smki init``), with
a code and a message naming the file, the key and what was expected.

Before typed policy files each of these was accepted: an unknown key was ignored and its default used, a
wrong type was coerced or failed with a bare KeyError/TypeError on some later request, and a name that no
other file defines (a role, a profile, a reason) was only found when a request needed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smki.core.errors import ConfigurationError
from smki.core.policy import validate_policies
from tests.policy.conftest import Edit, rewrite


def drop(*path: str | int) -> Edit:
    def edit(data: Any) -> None:
        for part in path[:-1]:
            data = data[part]
        del data[path[-1]]
    return edit


def put(value: Any, *path: str | int) -> Edit:
    def edit(data: Any) -> None:
        for part in path[:-1]:
            data = data[part]
        data[path[-1]] = value
    return edit


def rename(old: str, new: str, *path: str) -> Edit:
    def edit(data: Any) -> None:
        for part in path:
            data = data[part]
        data[new] = data.pop(old)
    return edit


@dataclass(frozen=True)
class Broken:
    file: str
    edit: Edit
    code: str
    key: str           # the key path the message names
    expected: str      # a phrase of what the message says was expected


CASES = {
    # unknown keys: a misspelling is not silently ignored (with the default used instead)
    "unknown key, nested": Broken("device_csr_limits.yaml", rename("max_csrs", "max_csr", "batch"), "CA:CFG21",
                                  "batch.max_csr", "unknown key; expected one of max_csrs, max_request_bytes"),
    "unknown key, top level": Broken("repository.yaml", put(3, "lockout_failures"), "CA:CFG3",
                                     "lockout_failures", "unknown key; expected one of revocation_lists"),
    "unknown key in a profile": Broken("profiles/device.yaml", put("x", "extensions", 0, "usage"), "CA:CFG3",
                                       "extensions[0].usage", "unknown key"),
    # wrong types
    "text for a boolean": Broken("device_csr_limits.yaml", put("no", "enforce"), "CA:CFG21", "enforce",
                                 "expected true or false, found 'no'"),
    "text for a number": Broken("repository.yaml", put("five", "access", "lockout_failures"), "CA:CFG3",
                                "access.lockout_failures", "expected a whole number, found 'five'"),
    "list for a mapping": Broken("ra.yaml", put(["SMKI IKI"], "iki"), "CA:CFG3", "iki",
                                 "expected a mapping with the keys ca_name"),
    "a bad object identifier": Broken("environments/test.yaml", put("1.2.x", "policy_oids", "device"), "CA:CFG3",
                                      "policy_oids.device", "an object identifier in dotted form"),
    "an unquoted time of day": Broken("device_csr_limits.yaml", put(420, "limits", "core_hours", "start"),
                                      "CA:CFG20", "limits.core_hours.start", "quoted text \"HH:MM\""),
    "an unknown time zone": Broken("device_csr_limits.yaml", put("Europe/Londres", "limits", "core_hours",
                                                                 "timezone"),
                                   "CA:CFG20", "limits.core_hours.timezone", "an IANA time zone name"),
    "an EUI-64 that is not one": Broken("environments/test.yaml", put("90B3D51F3000000", "dcc_entity_identifiers",
                                                                      "recovery"),
                                        "CA:CFG3", "dcc_entity_identifiers.recovery", "16 hexadecimal digits"),
    # thresholds and values out of range
    "a zero threshold": Broken("eligibility.yaml", put(0, "device", "max_certificates_per_device"), "CA:CFG3",
                               "device.max_certificates_per_device", "greater than 0"),
    "a zero chunk size": Broken("device_csr_limits.yaml", put(0, "processing", "chunk_size"), "CA:CFG21",
                                "processing.chunk_size", "greater than 0"),
    "a port out of range": Broken("repository.yaml", put(70000, "dccboxed", "port"), "CA:CFG3", "dccboxed.port",
                                  "less than or equal to 65535"),
    "a CRL republished after it expires": Broken("profiles/crl.yaml", put(72, "publication_interval_hours"),
                                                 "CA:CFG3", "publication_interval_hours",
                                                 "fewer hours than next_update_hours (48)"),
    "a refusal code not in the SEC style": Broken("eligibility.yaml", put("ORG01", "codes", "org.srept"), "CA:CFG3",
                                                  "codes.org.srept", "match pattern"),
    # missing required keys
    "a missing mapping": Broken("eligibility.yaml", drop("device", "provisioning_states"), "CA:CFG3",
                                "device.provisioning_states", "missing; expected a mapping of names"),
    "a missing key in a list item": Broken("roles.yaml", drop("roles", 2, "ou"), "CA:CFG3", "roles[2].ou",
                                           "missing; expected text"),
    "a missing CA name": Broken("environments/test.yaml", drop("ca_names", "root_dca"), "CA:CFG3", "ca_names",
                                "exactly the keys root_oca, issuing_oca, root_dca, issuing_dca (missing root_dca)"),
    # names another file (or another part of the file) must define
    "an unknown Remote Party Role": Broken("eligibility.yaml",
                                           rename("supplier", "supplyer", "organisation", "remote_party_roles"),
                                           "CA:CFG3", "organisation.remote_party_roles.supplyer (key)",
                                           "the end-entity Remote Party Roles in roles.yaml"),
    "a CA role open to Subscribers": Broken("eligibility.yaml",
                                            rename("other", "issuingAuthority", "organisation", "remote_party_roles"),
                                            "CA:CFG3", "organisation.remote_party_roles.issuingAuthority (key)",
                                            "end-entity Remote Party Roles"),
    "an unknown DCC-only role": Broken("eligibility.yaml", put(["recovery", "wanProvidr"], "organisation",
                                                               "dcc_only", "roles"),
                                       "CA:CFG3", "organisation.dcc_only.roles[1]", "Remote Party Roles in roles.yaml"),
    "an unknown User Role": Broken("eligibility.yaml", put(["IS", "XX"], "organisation", "remote_party_roles",
                                                           "supplier", "user_roles"),
                                   "CA:CFG3", "organisation.remote_party_roles.supplier.user_roles[1]",
                                   "the User Roles listed under user_roles"),
    "an unknown provisioning permission": Broken("eligibility.yaml", put(["dcc"], "device", "provisioning_states",
                                                                         "installed"),
                                                 "CA:CFG3", "device.provisioning_states.installed[0]",
                                                 "'any_authorised_subscriber', 'responsible_supplier'"),
    "an unknown profile to lint": Broken("issuance.yaml", put(True, "lint_before_release", "organisaton"),
                                         "CA:CFG3", "lint_before_release.organisaton (key)", "'organisation'"),
    "an unknown revocation list": Broken("repository.yaml", put("crl2", "revocation_lists", "organisation"),
                                         "CA:CFG3", "revocation_lists.organisation", "'crl' or 'arl'"),
    "an unknown CA as a profile's issuer": Broken("profiles/organisation.yaml", put("issuing_xca", "issuer"),
                                                  "CA:CFG3", "issuer", "'self', 'root_oca'"),
    "a profile named unlike its file": Broken("profiles/arl.yaml", put("crl", "name"), "CA:CFG3", "name",
                                              "'arl', the name of the file"),
    "a reason the Repository does not map": Broken("ra.yaml", put("keyCompromized", "revocation_reasons",
                                                                  "key_compromise"),
                                                   "CA:CFG3", "revocation_reasons.key_compromise",
                                                   "the reasons repository.yaml maps"),
    "a reason RFC 5280 does not define": Broken("repository.yaml", put("keyLost", "revocation_reasons",
                                                                       "keyCompromise"),
                                                "CA:CFG10", "revocation_reasons.keyCompromise",
                                                "one of the RFC 5280 reasons"),
    "an inactive environment that does not exist": Broken("environment.yaml", put("prod", "active"), "CA:CFG3",
                                                          "active", "the files in environments/"),
    "two limits per Device ID that disagree": Broken("device_csr_limits.yaml", put(99, "adhoc",
                                                                                   "certificate_threshold"),
                                                     "CA:CFG21", "adhoc.certificate_threshold",
                                                     "eligibility.yaml's device max_certificates_per_device"),
    "a duplicated role code": Broken("roles.yaml", put({"code": 2, "ou": "02", "name": "supplier2"}, "roles", 3),
                                     "CA:CFG3", "roles[3].code", "a code no other role has"),
    # the GBCS rules a profile cannot override
    # a recovery scenario (policies/recovery/): a step that needs one never done before it
    "a scenario step's unknown precondition": Broken("recovery/org_key_method3.yaml",
                                                     put(["no_such_step"], "phases", 0, "steps", 1, "preconditions"),
                                                     "CA:CFG50", "phases[0].steps[1].preconditions", "no_such_step"),
    "a GBCS rule contradicted": Broken("profiles/organisation.yaml", put(False, "extensions", 0, "critical"),
                                       "CA:CFG11", "extensions[0].critical", "GBCS requires keyUsage critical"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_broken_policy_file_is_refused_naming_the_file_the_key_and_the_expectation(policies: Path,
                                                                                     case: Broken) -> None:
    rewrite(policies, case.file, case.edit)

    with pytest.raises(ConfigurationError) as caught:
        validate_policies(policies)

    error = caught.value
    assert error.code == case.code, error.message
    assert str(policies / case.file) in error.message
    assert f"{case.key}: " in error.message, error.message
    assert case.expected in error.message, error.message
    assert any(finding.field == case.key for finding in error.details), error.details


def test_every_bad_file_is_reported_at_once(policies: Path) -> None:
    rewrite(policies, "csr.yaml", put("big", "max_size_bytes"))
    rewrite(policies, "repository.yaml", put("five", "access", "lockout_failures"))

    with pytest.raises(ConfigurationError) as caught:
        validate_policies(policies)

    assert "2 policy files" in caught.value.message
    assert {finding.field for finding in caught.value.details} == {"max_size_bytes", "access.lockout_failures"}


def test_a_file_that_is_not_yaml_or_not_there_is_refused(policies: Path) -> None:
    (policies / "ra.yaml").write_text("user_id_prefix: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        validate_policies(policies)
    assert caught.value.code == "CA:CFG2" and str(policies / "ra.yaml") in caught.value.message

    (policies / "ra.yaml").unlink()
    with pytest.raises(ConfigurationError) as caught:
        validate_policies(policies)
    assert caught.value.code == "CA:CFG1" and str(policies / "ra.yaml") in caught.value.message


@pytest.mark.parametrize("content", ["", "- a\n- b\n", "just text\n"])
def test_a_file_that_is_not_a_mapping_is_refused(policies: Path, content: str) -> None:
    (policies / "csr.yaml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        validate_policies(policies)
    assert caught.value.code == "CA:CFG3"
    assert f"policy file {policies / 'csr.yaml'}: expected a mapping" in caught.value.message


def test_an_optional_file_may_be_absent_and_its_defaults_apply(policies: Path) -> None:
    (policies / "device_csr_gate.yaml").unlink()
    (policies / "issuance.yaml").unlink()

    loaded = validate_policies(policies)

    assert loaded.device_csr_gate.credentials == {} and loaded.device_csr_gate.dcc_party == "DCC"
    assert loaded.issuance.linted_profiles == frozenset()


def test_omitted_tunables_take_the_defaults_the_models_document(policies: Path) -> None:
    rewrite(policies, "repository.yaml", drop("publication"))
    rewrite(policies, "device_csr_limits.yaml", drop("processing"))

    loaded = validate_policies(policies)

    assert loaded.repository.publication.reconcile_minutes == 10
    assert loaded.device_csr_limits.processing.chunk_size == 500
