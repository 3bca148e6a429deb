"""The scenario catalogue (policies/srept/): every interface the sandbox serves is covered, positive and
negative, with a confidence tag; a broken file stops the start with a coded error naming the file and key; the
matcher and the answer reader take whatever a caller or the network hands them without failing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import ConfigurationError
from smki.core.policy import load_srept_catalogue
from smki.srept.catalogue import Observed, applicable, judge
from smki.srept.outcome import read_outcome

CATALOGUE = load_srept_catalogue(DEFAULT_POLICIES_DIR)


def test_every_interface_is_covered_positive_and_negative() -> None:
    interfaces = {i.interface: i for i in CATALOGUE.interfaces}
    assert set(interfaces) == {"portal", "organisation_csr", "device_csr_adhoc", "device_csr_batch",
                               "repository_service", "repository_access", "revocation_lists", "revocation",
                               "extracts"}
    for name, interface in interfaces.items():
        kinds = {s.kind for s in interface.scenarios}
        assert "positive" in kinds, name
        if name not in ("revocation_lists", "extracts"):
            assert "negative" in kinds, name
    assert {s.confidence for i in CATALOGUE.interfaces for s in i.scenarios} == {"A", "V"}


def test_applicability_follows_category_and_user_roles() -> None:
    supplier = {s.id for s in applicable(CATALOGUE, "large_supplier", ["IS"])}
    network = {s.id for s in applicable(CATALOGUE, "electricity_network", ["ED"])}
    dcc = {s.id for s in applicable(CATALOGUE, "dcc", [])}
    assert {"ADH-01", "BAT-02", "PTL-06"} <= supplier and {"ADH-01", "BAT-02"} <= dcc
    assert not {"ADH-01", "BAT-02", "PTL-06"} & network
    assert {"ORG-01", "REP-04", "CRL-01", "REV-02"} <= network


def _broken(tmp_path: Path, file: str, change) -> Path:  # type: ignore[no-untyped-def]
    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    path = policies / "srept" / file
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return policies


@pytest.mark.parametrize(("what", "file", "change", "names"), [
    ("a path that is no regular expression", "organisation_csr.yaml",
     lambda d: d["scenarios"][0]["satisfied_by"][0]["request"].update(path="(unclosed"),
     "scenarios[0].satisfied_by[0].request.path"),
    ("an id twice", "organisation_csr.yaml", lambda d: d["scenarios"][1].update(id="ORG-01"), "scenarios[1].id"),
    ("a negative scenario that expects no refusal", "revocation.yaml",
     lambda d: d["scenarios"][2]["satisfied_by"][0].update(outcome={}), "scenarios[2].satisfied_by[0].outcome"),
    ("an unknown User Role", "device_csr_batch.yaml",
     lambda d: d["scenarios"][0]["applies_to"].update(user_roles=["XX"]), "applies_to.user_roles[0]"),
    ("a confidence that is neither A nor V", "portal.yaml", lambda d: d["scenarios"][0].update(confidence="B"),
     "scenarios[0].confidence"),
    ("an unknown key", "recording.yaml", lambda d: d.update(flush_secs=1), "flush_secs"),
])
def test_a_broken_catalogue_is_refused_naming_file_and_key(tmp_path: Path, what: str, file: str, change,  # type: ignore[no-untyped-def]
                                                           names: str) -> None:
    policies = _broken(tmp_path, file, change)
    with pytest.raises(ConfigurationError) as refused:
        load_srept_catalogue(policies)
    assert refused.value.code.startswith("CA:CFG"), what
    assert file in refused.value.message and names in refused.value.message, refused.value.message


@settings(max_examples=200, deadline=None)
@given(content_type=st.one_of(st.none(), st.sampled_from(["application/xml", "application/json",
                                                          "application/problem+json", "text/html",
                                                          "application/pkix-crl", "text/plain",
                                                          "application/xml; charset=utf-8"]), st.text(max_size=40)),
       body=st.binary(max_size=2000), status=st.integers(min_value=100, max_value=599))
def test_any_answer_is_read_without_failing(content_type: str | None, body: bytes, status: int) -> None:
    outcome = read_outcome(content_type, body, status)
    assert outcome.error_code is None or len(outcome.error_code) <= 10


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "ATTEST"]), path=st.text(max_size=200),
       query=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
       credential=st.sampled_from(["api_token", "api_key", "run_key", "portal_session", "attestation"]),
       text=st.text(max_size=500), status=st.integers(100, 599), declared=st.one_of(st.none(), st.text(max_size=10)))
def test_any_interaction_is_judged_without_failing(method: str, path: str, query: dict[str, str], credential: str,
                                                   text: str, status: int, declared: str | None) -> None:
    seen = Observed(method, path, query, credential, text, status, None, None, text, declared)
    scenarios = applicable(CATALOGUE, "large_supplier", ["IS", "GS"])
    verdicts = judge(scenarios, seen)
    assert len({v.scenario_id for v in verdicts}) == len(verdicts)
    assert declared is None or len(verdicts) <= 1
