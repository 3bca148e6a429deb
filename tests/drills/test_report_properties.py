"""Random damage to a valid drill record: whatever is changed, removed or added, rendering the report either
succeeds with its four files or is refused with the report's coded error naming the field, and a refused
render writes nothing. Never a stray exception from the schema, the charts, the HTML or the PDF."""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smki.core.errors import SmkiError
from smki.drills.report import render
from tests.drills.test_report import drill_record, write_artefacts

REPORT_CODES = {"DR:REP01", "DR:REP02", "DR:REP03"}

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats() | st.text(max_size=40)
           | st.sampled_from(["", " ", "2026-12-03T10:00:00Z", "2026-12-03T09:00:00+01:00", "1999-01-01T00:00:00Z",
                              "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "$x$ \\frac{1}{0}", "ESME",
                              "Pre-Recovery", "Execution", "done", "failed", "skipped", "crl", "a/b.txt"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=6)
NOT_JSON = st.sampled_from([float("nan"), float("inf"), ("a",), frozenset({"a"}), b"bytes", dt.datetime(2026, 1, 1),
                            {1: "one"}, object()])


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, member in value.items():
            yield from paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from paths(member, (*prefix, index))


def at(record: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        record = record[part]
    return record


@st.composite
def damaged_records(draw: st.DrawFn) -> dict[str, Any]:
    record = drill_record()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(paths(record))[1:]))
        parent, last = at(record, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add", "duplicate", "odd"]))
        if action == "replace":
            current = parent[last]
            if isinstance(current, str) and draw(st.booleans()):  # an edit of the text, not a new value
                cut = draw(st.integers(min_value=0, max_value=len(current)))
                parent[last] = current[:cut] + draw(st.text(max_size=5)) + current[cut + draw(st.integers(0, 3)):]
            else:
                parent[last] = draw(JSON_VALUES)
        elif action == "odd":
            parent[last] = draw(NOT_JSON)
        elif action == "remove":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
        if not isinstance(record, dict) or not record:
            break
    return record


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artefacts(tmp_path_factory.mktemp("world") / "artefacts")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=damaged_records())
def test_random_damage_to_a_record_is_rendered_or_refused_with_the_coded_error(
        record: dict[str, Any], artefacts: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        try:
            files = render(record, artefacts, out)
        except SmkiError as refused:
            assert refused.code in REPORT_CODES, refused
            assert refused.field and refused.field in refused.message, refused
            assert not out.exists()
        else:
            assert sorted(p.name for p in out.iterdir()) == sorted(
                p.name for p in (files.html, files.pdf, files.json, files.evidence_zip))
            assert files.pdf.read_bytes().startswith(b"%PDF-")


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=300), number=st.floats(min_value=0.001, max_value=525600))
def test_any_printable_text_and_any_target_render(text: str, number: float, artefacts: Path) -> None:
    """Valid records with text from anywhere in Unicode (mathtext dollars, right-to-left, astral planes) and
    targets from a second to a year: the charts and the PDF draw them, or the schema refuses the text."""
    record = drill_record()
    record["run"]["title"] = text
    record["steps"][0]["title"] = text
    record["steps"][0]["target_minutes"] = number
    record["devices"]["failed"][0]["reason"] = text * 3
    record["devices"]["residual"][0]["party"] = record["devices"]["residual_by_type_party"][0]["party"] = text
    with tempfile.TemporaryDirectory() as scratch:
        try:
            render(record, artefacts, Path(scratch) / "out")
        except SmkiError as refused:
            assert refused.code == "DR:REP01" and refused.field in ("run/title", "steps/0/title",
                                                                    "devices/failed/0/reason",
                                                                    "devices/residual/0/party",
                                                                    "devices/residual_by_type_party/0/party")


# ------------------------------------------------------------------------------------------ the quick check
# mostly values the schema takes, so that the quick check often accepts and the property is tested
GOOD_NAMES = st.sampled_from(["ESME", "Alpha Energy", "supplier.digitalSignature", "\u00e9\u6f22 x"])
NAMES = GOOD_NAMES | GOOD_NAMES | st.text(max_size=8) | st.sampled_from(["", " ", "a\nb", "x\x85", "\ud800", "b\n"])
TIMES = st.sampled_from(["2026-12-03T10:00:00Z", "2026-12-03T10:00:00", "2026-12-03", "2026-12-03T10:00:00+01:00\n",
                         "2026-12-03 10:00:00Z", "2026-12-03T10:00:00.5+05:30"]) | st.text(max_size=25)
NUMBERS = (st.integers(min_value=0, max_value=300) | st.integers(min_value=-3, max_value=2 * 10**9) | st.booleans()
           | st.floats(allow_nan=False) | st.none())
ITEMS = {
    "recovery_curve": st.fixed_dictionaries({"at": TIMES, "recovered": NUMBERS},
                                            optional={"extra": NAMES}),
    "residual": st.fixed_dictionaries({"device_id": NAMES, "type": NAMES, "party": NAMES,
                                       "cells": st.lists(NAMES, max_size=3) | NAMES}, optional={"extra": NAMES}),
    "failed": st.fixed_dictionaries({"device_id": NAMES, "type": NAMES, "party": NAMES,
                                     "reason": NAMES | NAMES | NUMBERS,
                                     "codes": st.dictionaries(NAMES, NUMBERS, max_size=3)},
                                    optional={"extra": NAMES}),
}


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(ITEMS)))
def test_what_the_quick_check_of_long_lists_accepts_the_schema_accepts(data: st.DataObject, kind: str) -> None:
    from smki.drills import report

    item = data.draw(ITEMS[kind])
    schema = report._schema()
    where = schema["properties"] if kind == "recovery_curve" else schema["properties"]["devices"]["properties"]
    items = report._validator().evolve(schema={**where[kind]["items"], "$defs": schema["$defs"]})
    if report._quick().accepts(kind, item):
        assert items.is_valid(item), item


def test_an_error_deep_in_a_long_list_names_its_place_in_the_whole_list(artefacts: Path) -> None:
    record = drill_record()
    record["devices"]["total"] = 10_000
    record["recovery_curve"] = [{"at": "2026-12-03T10:50:00Z", "recovered": n} for n in range(5000)]
    record["recovery_curve"][3456]["at"] = "2026-12-03T10:50:00"   # no offset
    record["devices"]["residual"] += [dict(record["devices"]["residual"][0], device_id=f"d{n}") for n in range(900)]
    record["devices"]["residual"][700]["cells"] = ["ok", 5]
    with tempfile.TemporaryDirectory() as scratch, pytest.raises(SmkiError) as refused:
        render(record, artefacts, Path(scratch) / "out")
    assert refused.value.field in ("recovery_curve/3456/at", "devices/residual/700/cells/1")
    record["recovery_curve"][3456]["at"] = "2026-12-03T10:50:00Z"
    with pytest.raises(SmkiError) as second:
        render(record, artefacts, Path("/nonexistent/never-written"))
    assert second.value.field == "devices/residual/700/cells/1"
