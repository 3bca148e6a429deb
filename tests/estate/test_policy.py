"""``policies/estate.yaml``: a bad file stops the start naming the key; faults are drawn as the policy says,
the same for a device however often it is drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from smki.core.config import DEFAULT_POLICIES_DIR
from smki.core.errors import ConfigurationError
from smki.core.policy import validate_policies
from smki.core.policyfiles.estate import Faults
from smki.estate.faults import Fault, FaultDraw, names


def _policies(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, directory)
    path = directory / "estate.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return directory


def test_the_shipped_file_reads() -> None:
    policy = validate_policies(DEFAULT_POLICIES_DIR).estate
    assert set(policy.device_types) >= {"ESME", "GSME", "CHF"}
    assert {c.role for c in policy.device_types["CHF"].cells} == {"root", "recovery", "accessControlBroker",
                                                                  "wanProvider"}


@pytest.mark.parametrize(("change", "key", "expected"), [
    (lambda d: d["device_types"]["ESME"]["cells"].append({"role": "supplyer", "usage": "digitalSignature"}),
     "device_types.ESME.cells[9].role", "roles.yaml"),
    (lambda d: d["device_types"]["GSME"]["owners"].update({"supplier": ["XX"]}),
     "device_types.GSME.owners.supplier[0]", "User Roles"),
    (lambda d: d["device_types"]["CHF"]["cells"][0].update({"usage": "digitalSignature"}),
     "device_types.CHF.cells[0].usage", "keyCertSign"),
    (lambda d: d["faults"].update({"busy": 1.5}), "faults.busy", "1"),
    (lambda d: d["dcc_roles"].update({"wanProvider": "wan"}), "dcc_roles.wanProvider", "dcc_entity_identifiers"),
    (lambda d: d.update({"chunk_size": "500"}), "chunk_size", "whole number"),
    (lambda d: d["device_types"]["CHF"].update({"owners": {}, "cells": [{"role": "supplier",
                                                                           "usage": "digitalSignature"}]}),
     "device_types.CHF.owners", "supplier"),
])
def test_a_bad_file_is_refused_naming_the_key(tmp_path: Path, change, key: str,  # type: ignore[no-untyped-def]
                                             expected: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        validate_policies(_policies(tmp_path, change))
    assert refused.value.code.startswith("CA:CFG")
    assert "estate.yaml" in refused.value.message and key in refused.value.message
    assert expected in refused.value.message


def test_faults_follow_the_shares_and_the_device() -> None:
    draw = FaultDraw(Faults(offline=0.25, tampered_cells=1.0))
    drawn = [draw(n.to_bytes(8, "big")) for n in range(4000)]
    assert drawn == [draw(n.to_bytes(8, "big")) for n in range(4000)]
    offline = sum(1 for flags in drawn if flags & Fault.OFFLINE)
    assert 800 < offline < 1200   # a quarter, give or take what a hash does
    assert all(flags & Fault.TAMPERED_CELLS for flags in drawn)
    assert draw.cell_state(Fault.TAMPERED_CELLS | Fault.STALE_CELLS) == "tampered"
    assert names(Fault.OFFLINE | Fault.BUSY) == ["offline", "busy"]
    assert FaultDraw(Faults())(b"\x00" * 8) == 0
