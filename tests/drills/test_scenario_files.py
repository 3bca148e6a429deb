"""Scenario files: each in policies/recovery/ loads; a bad one fails at load with CA:CFG50 naming the key; the
notification and progress files are refused when their schema does not describe them."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import ConfigurationError
from smki.core.policyfiles.recovery import BAD_SCENARIO, Scenario, load_scenario_file, scenario_names
from smki.drills import files

GOOD = yaml.safe_load((DEFAULT_POLICIES_DIR / "recovery" / "org_key_method1.yaml").read_text())


def _load(tmp_path: Path, data: Any, name: str = "org_key_method1") -> Scenario:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_scenario_file(path)


def _broken(change) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def test_every_scenario_file_loads_with_its_three_phases_and_an_actor_for_every_step() -> None:
    for name in scenario_names(DEFAULT_POLICIES_DIR):
        scenario = load_scenario_file(DEFAULT_POLICIES_DIR / "recovery" / f"{name}.yaml")
        assert [phase.name for phase in scenario.phases] == ["Pre-Recovery", "Execution", "Post-Recovery"]
        assert all(step.actor and step.confidence in ("A", "V") for _phase, step in scenario.steps)


@pytest.mark.parametrize(("change", "key"), [
    (lambda d: d["phases"][1]["steps"][0].update(action="launch_missiles"), "phases[1].steps[0]"),
    (lambda d: d["phases"][1]["steps"][0].update(actor="the janitor"), "phases[1].steps[0].revoke.actor"),
    (lambda d: d["phases"][1]["steps"][0].update(preconditions=["check"]), "phases[1].steps[0].preconditions"),
    (lambda d: d["phases"].reverse(), "phases"),
    (lambda d: d.update(id="another_name"), "id"),
    (lambda d: d["compromised"].pop("party"), "compromised.party"),
    (lambda d: d["phases"][1]["steps"][2]["send"].pop("escalate_to") and
     d["phases"][1]["steps"][2]["send"].update(mode="recovery"), "phases[1].steps[2].send.ceremony"),
    (lambda d: d["phases"][1]["steps"][2]["send"].update(mode="rootBySupplier"),
     "phases[1].steps[2].send_commands.send.mode"),
    (lambda d: d["phases"][0]["steps"][1].update(confidence="maybe"), "phases[0].steps[1].dcc_confirm.confidence"),
    (lambda d: d["phases"][0]["steps"][0].update(target_minutes=-5), "phases[0].steps[0].notify_compromise"),
])
def test_a_bad_scenario_file_fails_at_load_naming_the_key(tmp_path: Path, change, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError) as refused:
        _load(tmp_path, _broken(change))
    assert refused.value.code == BAD_SCENARIO
    assert key in refused.value.message and "org_key_method1.yaml" in refused.value.message


def test_a_scenario_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigurationError) as refused:
        load_scenario_file(path)
    assert refused.value.code == "CA:CFG2"


values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["phases", 0, 1, "steps", 0, 2, "send", "compromised", "mode", "action",
                                      "decisions", "id"]), min_size=1, max_size=5), value=values)
def test_whatever_a_scenario_file_says_it_loads_or_is_refused_with_a_code(tmp_path: Path, path, value) -> None:  # type: ignore[no-untyped-def]
    data: Any = copy.deepcopy(GOOD)
    target = data
    for part in path[:-1]:
        try:
            target = target[part]
        except (KeyError, IndexError, TypeError):
            break
    with contextlib.suppress(IndexError, TypeError):
        target[path[-1]] = value
    try:
        _load(tmp_path, data)
    except ConfigurationError as error:
        assert error.code.startswith("CA:CFG")


def test_notification_and_progress_files_are_checked_on_write_and_read(tmp_path: Path) -> None:
    document = {"format": "smki-other-compromise-notification/1", "reference": "DRILL-1", "notified_at":
                "2026-12-03T10:00:00+00:00", "notifier": {"party": "DCC", "party_id": 1, "person": "ops"},
                "nature": "suspected", "description": "test", "compromise": {"key": "recovery", "certificates": []},
                "dcc_confirmation": None, "notified": []}
    path = files.write(tmp_path / "n.json", "other-compromise-notification", document)
    assert files.read(path, "other-compromise-notification") == document
    with pytest.raises(files.DrillFileError) as wrong:
        files.write(tmp_path / "m.json", "other-compromise-notification", {**document, "nature": "imagined"})
    assert wrong.value.code == files.BAD_FILE and "nature" in wrong.value.message
    assert not (tmp_path / "m.json").exists()
    path.write_text(path.read_text().replace('"recovery"', '"the moon"'))
    with pytest.raises(files.DrillFileError):
        files.read(path, "other-compromise-notification")
    path.write_text("{not json")
    with pytest.raises(files.DrillFileError):
        files.read(path, "other-compromise-notification")
