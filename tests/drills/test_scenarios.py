"""Every scenario of policies/recovery/ runs end to end on a small estate, and its record says that no device
still trusts the compromised key, or names exactly the devices that do because of the faults injected."""

from __future__ import annotations

import pytest

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.policyfiles.recovery import scenario_names
from smki.drills.record import record
from smki.drills.runner import COMPLETED, Drills
from tests.drills.conftest import check_record, residual_expected

# Scenarios the runner does not finish yet, with the xfail mark that says why (none now; tests of the report
# import it to mark the same scenarios).
PENDING: dict[str, pytest.MarkDecorator] = {}


def test_there_is_a_scenario_file_for_every_row_of_the_recovery_procedure() -> None:
    assert set(scenario_names(DEFAULT_POLICIES_DIR)) == {
        "org_key_method1", "org_key_method2", "org_key_method3", "acb_key", "wan_provider_key",
        "transitional_cos_key", "issuing_oca_key", "root_oca_key", "contingency_key", "recovery_key"}


@pytest.mark.parametrize("scenario", [pytest.param(name, marks=PENDING.get(name, ()))
                                      for name in scenario_names(DEFAULT_POLICIES_DIR)])
def test_scenario_runs_end_to_end(drills: Drills, scenario: str) -> None:
    run_id = drills.create(scenario, seed=11)
    assert drills.execute(run_id) == COMPLETED, drills.progress(run_id).error
    data = record(drills.host, run_id)
    check_record(data)
    expected = residual_expected(drills, run_id)
    residual = {item["device_id"] for item in data["devices"]["residual"]}
    assert residual == expected
    assert sum(row["devices"] for row in data["devices"]["residual_by_type_party"]) == len(expected)
    assert data["run"]["status"] == COMPLETED and len(data["phases"]) == 3
    steps = drills.steps(run_id)
    assert all(step["status"] == "done" and step["actor"] for step in steps)
    # the affected devices not named residual were recovered, and the rest of the estate never was exposed
    devices = data["devices"]
    assert devices["recovered"] + len(residual) + devices["not_affected"] == devices["total"]
    assert devices["recovered"] > 0
    kinds = {artefact["kind"] for artefact in data["artefacts"]}
    assert {"notification", "progress", "cells"} <= kinds
