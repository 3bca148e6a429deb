"""Every scenario's real drill record, as the runner writes it, renders to a report that says no device still
trusts the compromised key, or names exactly the devices that do because of the faults the drill injected."""

from __future__ import annotations

import zipfile
from pathlib import Path

import lxml.html
import pytest

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.policyfiles.recovery import scenario_names
from smki.drills.record import artefacts_dir, record
from smki.drills.report import render
from smki.drills.runner import COMPLETED, Drills
from tests.drills.conftest import residual_expected
from tests.drills.test_scenarios import PENDING  # the scenarios the runner does not finish yet, as it marks them


@pytest.mark.parametrize("scenario", [pytest.param(name, marks=PENDING.get(name, ()))
                                      for name in scenario_names(DEFAULT_POLICIES_DIR)])
def test_the_report_of_each_scenario_names_exactly_the_devices_still_exposed(
        drills: Drills, scenario: str, tmp_path: Path) -> None:
    run_id = drills.create(scenario, seed=11)
    assert drills.execute(run_id) == COMPLETED, drills.progress(run_id).error
    files = render(record(drills.host, run_id), artefacts_dir(drills.host, run_id), tmp_path / "report")
    page = lxml.html.fromstring(files.html.read_bytes())
    headline = page.get_element_by_id("residual-headline").text_content()
    exposed = {row.xpath("td")[0].text_content() for row in page.xpath('//table[@id="residual-devices"]/tbody/tr')
               if len(row.xpath("td")) > 1}
    expected = residual_expected(drills, run_id)
    assert exposed == expected
    if expected:
        assert headline.startswith(f"{len(expected)} device")
    else:
        assert headline.startswith("No device still trusts the compromised key")
    listed = {f"artefacts/{item['path']}" for item in record(drills.host, run_id)["artefacts"]}
    with zipfile.ZipFile(files.evidence_zip) as archive:
        assert listed <= set(archive.namelist())
