"""Drill fixtures: a host instance (the test's database, SQLite or PostgreSQL) and its drills, whose worlds are
discarded after the test (a PostgreSQL world is a schema of the test database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from smki.drills.models import DrillRun
from smki.drills.runner import Drills
from smki.instance import Instance

RECORD_SCHEMA = Path(__file__).resolve().parents[2] / "smki" / "drills" / "schemas" / "drill-record.json"


@pytest.fixture
def drills(instance: Instance) -> Iterator[Drills]:
    drills = Drills(instance)
    yield drills
    with instance.database.session() as session:
        runs = [run.id for run in session.query(DrillRun).all()]
    for run_id in runs:
        drills.discard_world(run_id)


def residual_expected(drills: Drills, run_id: int) -> set[str]:
    """The devices the drill injected a fault into that no command can get past: offline, busy, tampered."""
    with drills.database.session() as session:
        run = session.get(DrillRun, run_id)
        assert run is not None
        chosen: dict[str, list[str]] = run.context.get("faults", {})
    return {d for name in ("offline", "busy", "tampered_cells") for d in chosen.get(name, [])}


def check_record(record: dict[str, Any]) -> None:
    """The record is what the contract with the report says (the report's schema, where it has one)."""
    if RECORD_SCHEMA.exists():
        validator = Draft202012Validator(json.loads(RECORD_SCHEMA.read_text()), format_checker=FormatChecker())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, errors[:5]
