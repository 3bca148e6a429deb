"""The drill report (issue 14 item 5): what a recovery drill did and found, as JSON for machines, HTML and PDF
for people, and an evidence zip of every artefact, lodged in the Repository for the SMKI PMA and the Panel.

The drill runner hands over a record (a JSON-able dict, ``schemas/drill-record.json``) and the drill's
artefacts folder. :func:`render` refuses a record that does not match the schema or contradicts itself with a
coded error naming the field, before it writes anything; otherwise it writes the four files whole (each to a
temporary name, then renamed), so a failed render leaves nothing behind and a repeated one replaces them.
The same record renders to the same bytes (the charts' and the PDF's metadata carry no dates), so lodging a
run's report again is a no-op (:func:`lodge`).

Tables in the HTML and PDF are capped (``rows``, first rows then a count of the rest): a drill over a
million devices must not list a million rows to people; the JSON and the evidence zip keep everything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import matplotlib
from jsonschema.exceptions import ValidationError, best_match
from markupsafe import Markup
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from repository.documents import MAX_DOCUMENT_BYTES, DocumentStore, DocumentVersion
from smki.core.errors import SmkiError
from smki.drills import charts
from smki.gbcs.values import StatusCode
from smki.instance import Instance

MALFORMED = "DR:REP01"        # the record does not match the schema
INCONSISTENT = "DR:REP02"     # the record matches the schema but contradicts itself
ARTEFACT_MISSING = "DR:REP03"  # an artefact the record names is not a file in the artefacts folder
LODGED_OTHERWISE = "DR:REP04"  # the run's report is lodged already with other content
NOT_THIS_RUN = "DR:REP05"     # the files given to lodge are not that run's report
TOO_LARGE = "DR:REP06"        # a file is larger than the Repository takes
NOT_WRITTEN = "DR:REP07"      # the report could not be written to its folder

TABLE_ROWS = 200    # rows of each table shown in the HTML and PDF; the rest are counted
PDF_CELL_CHARACTERS = 300  # a cell taller than a page cannot be laid out: longer text is cut in the PDF
AUDIENCE = ("sec_panel", "smki_pma")  # the Repository roles that read a drill report: the Panel and the PMA
LODGED_BY = "DCC recovery drills"
MEDIA_TYPES = {"html": "text/html", "pdf": "application/pdf", "json": "application/json"}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path
    json: Path
    evidence_zip: Path


@dataclass(frozen=True)
class LodgedReport:
    """The Repository documents of a run's report, by format; ``lodged`` says whether this call lodged any
    new version (False: the same report was lodged before, and nothing changed)."""

    html: DocumentVersion
    pdf: DocumentVersion
    json: DocumentVersion
    lodged: bool

    @property
    def names(self) -> tuple[str, str, str]:
        return self.html.name, self.pdf.name, self.json.name

    def __str__(self) -> str:
        return ", ".join(f"{version.name} v{version.version}" for version in (self.html, self.pdf, self.json))


# ---------------------------------------------------------------------------------------------- the record
def _refuse(code: str, where: Sequence[str | int], message: str) -> SmkiError:
    name = "/".join(str(part) for part in where) or "record"
    return SmkiError(code, f"the drill record's {name} {message}", field=name)


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("smki.drills").joinpath("schemas/drill-record.json")
                                        .read_text("utf-8"))
    return loaded


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or _parse_time(value) is not None

    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def _parse_time(text: str) -> dt.datetime:
    """A time with its offset (RFC 3339), in UTC; ValueError for anything else: a time with no offset cannot
    be placed, and one that is not a time in UTC (year 1 at +14:00) cannot be drawn or zipped."""
    if len(text) < 16 or text[10] not in "Tt ":
        raise ValueError("not a date and time")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError as error:
        raise ValueError("not a time in UTC") from error


def _check_json(value: object, where: list[str | int]) -> None:
    """Only what JSON carries: the schema cannot see a NaN, a tuple for a list, or a key that is not text."""
    stack: list[tuple[object, list[str | int]]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            for key, member in item.items():
                if not isinstance(key, str):
                    raise _refuse(MALFORMED, path, f"has the key {key!r}, which is not text")
                stack.append((member, [*path, key]))
        elif isinstance(item, list):
            stack.extend((member, [*path, index]) for index, member in enumerate(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _refuse(MALFORMED, path, f"is {item}, which JSON cannot carry: give a finite number")
        elif item is not None and not isinstance(item, str | int | bool):
            raise _refuse(MALFORMED, path, f"is a {type(item).__name__}, which JSON cannot carry")


def _schema_error(error: ValidationError, path: list[str | int]) -> SmkiError:
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in schema["required"] if key not in error.instance]
        return _refuse(MALFORMED, [*path, missing[0]], "is missing")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        extra = sorted(key for key in error.instance if key not in known)
        if extra:
            return _refuse(MALFORMED, [*path, extra[0]], "is not a field of a drill record (see "
                           "smki/drills/schemas/drill-record.json)")
    if error.validator == "format":
        return _refuse(MALFORMED, path, f"is {_shown(error.instance)}, not a date and time with its offset "
                       "(RFC 3339, for example 2026-12-03T10:00:00Z)")
    if error.validator == "pattern" and isinstance(error.instance, str):
        wanted = schema.get("description") or f"it must match {schema.get('pattern')}"
        return _refuse(MALFORMED, path, f"is {_shown(error.instance)}, which it may not be. {wanted}")
    if error.validator == "oneOf" or error.validator == "anyOf":
        return _refuse(MALFORMED, path, f"is {_shown(error.instance)}, which is not one of the values it may take "
                       f"({schema.get('description') or _alternatives(schema)})")
    return _refuse(MALFORMED, path, f"is {_shown(error.instance)}: {error.message[-200:]}")


def _alternatives(schema: Mapping[str, Any]) -> str:
    options = schema.get("oneOf") or schema.get("anyOf") or []
    kinds = ["null" if o.get("type") == "null" else str(o.get("$ref", o.get("type", "value"))).rsplit("/", 1)[-1]
             for o in options]
    return " or ".join(kinds)


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def _span(item: Mapping[str, Any], where: list[str | int]) -> None:
    started, ended = _parse_time(item["started_at"]), item["ended_at"]
    if ended is not None and _parse_time(ended) < started:
        raise _refuse(INCONSISTENT, [*where, "ended_at"], f"({ended}) is before its started_at "
                      f"({item['started_at']})")


def _check_consistent(record: Mapping[str, Any]) -> None:
    """What the schema cannot say: times in order, steps in a phase of the drill, counts that add up."""
    run, devices = record["run"], record["devices"]
    _span(run, ["run"])
    if sum(run["estate"]["by_type"].values()) != run["estate"]["devices"]:
        raise _refuse(INCONSISTENT, ["run", "estate", "by_type"], f"counts {sum(run['estate']['by_type'].values())}"
                      f" devices, but run/estate/devices says {run['estate']['devices']}")
    phases: set[str] = set()
    for index, phase in enumerate(record["phases"]):
        if phase["name"] in phases:
            raise _refuse(INCONSISTENT, ["phases", index, "name"], f"names {phase['name']} a second time")
        phases.add(phase["name"])
        _span(phase, ["phases", index])
    ids: set[str] = set()
    for index, step in enumerate(record["steps"]):
        if step["phase"] not in phases:
            raise _refuse(INCONSISTENT, ["steps", index, "phase"], f"is {step['phase']}, which is not a phase of "
                          f"this drill ({', '.join(sorted(phases))})")
        if step["id"] in ids:
            raise _refuse(INCONSISTENT, ["steps", index, "id"], f"is {step['id']!r}, the id of an earlier step")
        ids.add(step["id"])
        _span(step, ["steps", index])
    total = devices["total"]
    for name in ("recovered", "not_affected"):
        if devices[name] > total:
            raise _refuse(INCONSISTENT, ["devices", name], f"({devices[name]}) is more than devices/total ({total})")
    if devices["recovered"] + devices["not_affected"] > total:
        raise _refuse(INCONSISTENT, ["devices", "recovered"], f"({devices['recovered']}) and devices/not_affected "
                      f"({devices['not_affected']}) add up to more than devices/total ({total})")
    for name in ("failed", "residual"):
        if len(devices[name]) > total:
            raise _refuse(INCONSISTENT, ["devices", name], f"lists {len(devices[name])} devices, more than "
                          f"devices/total ({total})")
    groups: set[tuple[str, str]] = set()
    for index, group in enumerate(devices["residual_by_type_party"]):
        if (group["type"], group["party"]) in groups:
            raise _refuse(INCONSISTENT, ["devices", "residual_by_type_party", index],
                          f"counts {group['type']} devices of {group['party']} a second time")
        groups.add((group["type"], group["party"]))
    counted = sum(group["devices"] for group in devices["residual_by_type_party"])
    if counted != len(devices["residual"]):
        raise _refuse(INCONSISTENT, ["devices", "residual_by_type_party"], f"counts {counted} devices, but "
                      f"devices/residual lists {len(devices['residual'])}")
    for index, point in enumerate(record["recovery_curve"]):
        if point["recovered"] > total:
            raise _refuse(INCONSISTENT, ["recovery_curve", index, "recovered"], f"({point['recovered']}) is more "
                          f"than devices/total ({total})")
    paths: set[str] = set()
    for index, artefact in enumerate(record["artefacts"]):
        if artefact["path"] in paths:
            raise _refuse(INCONSISTENT, ["artefacts", index, "path"], f"lists {artefact['path']} a second time")
        paths.add(artefact["path"])


class _Quick:
    """Accepts the items of the record's long lists without jsonschema, which takes some 70 microseconds an
    item: a drill over a million devices may list a curve point, a failed or a residual device for each. Never
    laxer than the schema (the patterns and limits are the schema's own, and tests/drills checks that what it
    accepts the schema accepts); an item it does not accept goes to jsonschema for the verdict."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        defs, devices = schema["$defs"], schema["properties"]["devices"]["properties"]
        self.patterns = {name: re.compile(defs[name]["pattern"]) for name in ("name", "label", "text")}
        self.lengths = {name: defs[name]["maxLength"] for name in ("name", "label", "text")}
        self.count = defs["count"]["maximum"]
        status = devices["failed"]["items"]["properties"]["codes"]["additionalProperties"]
        self.status = (status["minimum"], status["maximum"])
        self.keys = {"recovery_curve": frozenset(schema["properties"]["recovery_curve"]["items"]["properties"]),
                     "failed": frozenset(devices["failed"]["items"]["properties"]),
                     "residual": frozenset(devices["residual"]["items"]["properties"])}

    def _string(self, kind: str, value: object) -> bool:
        return (type(value) is str and len(value) <= self.lengths[kind]
                and self.patterns[kind].search(value) is not None)

    def _count(self, value: object) -> bool:
        return type(value) is int and 0 <= value <= self.count

    @staticmethod
    def _time(value: object) -> bool:
        try:
            return type(value) is str and _parse_time(value) is not None
        except ValueError:
            return False

    def accepts(self, kind: str, item: object) -> bool:
        if type(item) is not dict or item.keys() != self.keys[kind]:
            return False
        if kind == "recovery_curve":
            return self._time(item["at"]) and self._count(item["recovered"])
        common = (self._string("name", item["device_id"]) and self._string("name", item["type"])
                  and self._string("label", item["party"]))
        if kind == "residual":
            return common and type(item["cells"]) is list and all(self._string("name", c) for c in item["cells"])
        codes, (low, high) = item["codes"], self.status
        return (common and self._string("text", item["reason"]) and type(codes) is dict
                and all(self._string("name", k) and type(v) is int and low <= v <= high for k, v in codes.items()))


@cache
def _quick() -> _Quick:
    return _Quick(_schema())


def _long_lists(record: object) -> list[tuple[str, list[str | int], list[Any]]]:
    if not isinstance(record, dict):
        return []
    found: list[tuple[str, list[str | int], list[Any]]] = []
    if isinstance(record.get("recovery_curve"), list):
        found.append(("recovery_curve", ["recovery_curve"], record["recovery_curve"]))
    devices = record.get("devices")
    if isinstance(devices, dict):
        found += [(name, ["devices", name], devices[name]) for name in ("failed", "residual")
                  if isinstance(devices.get(name), list)]
    return found


def _schema_errors(record: object) -> tuple[ValidationError, list[str | int]] | None:
    """The schema's verdict (its best error, and where in the record), with the long lists cut to the items
    :class:`_Quick` does not accept: an error in one names its place in the whole list."""
    places: dict[tuple[str | int, ...], list[int]] = {}
    slim = record
    long_lists = _long_lists(record)
    if long_lists:
        assert isinstance(record, dict)
        slim = {**record}
        if isinstance(record.get("devices"), dict):
            slim["devices"] = {**record["devices"]}
        quick = _quick()
        for kind, path, items in long_lists:
            kept = [index for index, item in enumerate(items) if not quick.accepts(kind, item)]
            places[tuple(path)] = kept
            holder = slim["devices"] if path[0] == "devices" else slim
            holder[path[-1]] = [items[index] for index in kept]
    error = best_match(_validator().iter_errors(slim))
    if error is None:
        return None
    where = list(error.absolute_path)
    for place, kept in places.items():
        if tuple(where[:len(place)]) == place and len(where) > len(place) and isinstance(where[len(place)], int):
            where[len(place)] = kept[where[len(place)]]
    return error, where


def _encoded(record: object) -> bytes:
    """The record as JSON, if JSON carries it as it is: no NaN, no tuple for a list, no key that is not text.
    Encoded once by the json module's C encoder; only a record it does not carry faithfully is walked, to
    name the field at fault."""
    try:
        text = json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        faithful = json.loads(text) == record
    except (TypeError, ValueError, RecursionError):
        faithful = False
    if not faithful:
        _check_json(record, [])
        raise _refuse(MALFORMED, [], "is not a JSON document")  # the walk names every case the encoder refuses
    return (text + "\n").encode()


def _checked(record: object) -> tuple[dict[str, Any], bytes]:
    encoded = _encoded(record)
    found = _schema_errors(record)
    if found is not None:
        raise _schema_error(*found)
    assert isinstance(record, dict)  # the schema says so
    _check_consistent(record)
    return record, encoded


def validate(record: object) -> dict[str, Any]:
    """``record`` if it is a well-formed drill record; else the coded error (``DR:REP01`` against the schema,
    ``DR:REP02`` when it contradicts itself) naming a field at fault."""
    return _checked(record)[0]


def artefact_files(record: Mapping[str, Any], artefacts_dir: Path) -> list[tuple[str, Path]]:
    """Every file in the artefacts folder, as (name with '/', path), sorted; each artefact the record names
    must be one of them (``DR:REP03``). A link is refused: the evidence is the drill's own files, and a link
    could draw in a file from outside (a key store, say)."""
    found: dict[str, Path] = {}
    if artefacts_dir.is_dir():
        for directory, subdirectories, files in os.walk(artefacts_dir):
            for name in sorted(subdirectories + files):
                path = Path(directory) / name
                relative = path.relative_to(artefacts_dir).as_posix()
                if path.is_symlink():
                    raise SmkiError(ARTEFACT_MISSING, f"{relative} in the artefacts folder {artefacts_dir} is a link:"
                                    " the evidence takes the drill's own files only; copy the file there instead",
                                    field="artefacts")
                if name in files:
                    if not stat.S_ISREG(path.stat().st_mode):
                        raise SmkiError(ARTEFACT_MISSING, f"{relative} in the artefacts folder {artefacts_dir} is "
                                        "not a regular file", field="artefacts")
                    found[relative] = path
    named: list[tuple[list[str | int], str]] = [(["artefacts", index, "path"], artefact["path"])
                                                for index, artefact in enumerate(record["artefacts"])]
    named += [(["steps", index, "artefacts", position], relative) for index, step in enumerate(record["steps"])
              for position, relative in enumerate(step["artefacts"])]
    for where, relative in named:
        if relative not in found:
            raise _refuse(ARTEFACT_MISSING, where, f"names {relative}, which is not a file in the artefacts folder "
                          f"{artefacts_dir}")
    return sorted(found.items())


# ---------------------------------------------------------------------------------------------- the view
@dataclass(frozen=True)
class Rows:
    """One table as people read it: the first rows, and how many more the JSON and the zip hold."""

    caption: str
    headings: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    more: int
    empty: str
    numeric: frozenset[int] = frozenset()
    widths: tuple[float, ...] = ()    # in the PDF, as parts of the page's width
    marks: list[str] = field(default_factory=list)  # a class per row shown (failed, over), or none
    against: int = -1                  # the column that says over or under its target


@dataclass(frozen=True)
class View:
    title: str
    headline: list[str]
    exposed: bool
    residual_headline: str
    facts: list[tuple[str, str]]
    tables: dict[str, Rows]
    evidence_name: str


def _when(text: str | None) -> str:
    if text is None:
        return "not ended"
    return _parse_time(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def _minutes(item: Mapping[str, Any]) -> float | None:
    if item["ended_at"] is None:
        return None
    return (_parse_time(item["ended_at"]) - _parse_time(item["started_at"])).total_seconds() / 60


def _duration(minutes: float | None) -> str:
    return "" if minutes is None else f"{minutes:,.1f} min"


def _against(taken: float | None, target: float | None) -> str:
    if taken is None:
        return "not ended"
    if target is None:
        return "no target"
    over = taken - target
    if abs(over) < 0.05:
        return "on target"
    return f"{over:,.1f} min over" if over > 0 else f"{-over:,.1f} min under"


def status_name(code: int) -> str:
    """A GBCS CS02b status code with its name, as GBCS spells it (``5 badCertificate``)."""
    try:
        first, *rest = StatusCode(code).name.lower().split("_")
    except ValueError:
        return f"{code} (not a CS02b status code)"
    return f"{code} {first}{''.join(word.capitalize() for word in rest)}"


def _party(name: str) -> str:
    return name or "(no Party)"


def _capped(items: Sequence[Any], rows: int) -> tuple[Sequence[Any], int]:
    return items[:rows], max(len(items) - rows, 0)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def view(record: Mapping[str, Any], *, rows: int = TABLE_ROWS) -> View:
    run, devices = record["run"], record["devices"]
    compromised = run["compromised"]
    key = compromised["key"] + (f" ({compromised['role']})" if compromised["role"] else "") + (
        f" of {compromised['party']}" if compromised["party"] else "")
    residual = devices["residual"]
    by_group = sorted(devices["residual_by_type_party"], key=lambda g: (-g["devices"], g["type"], g["party"]))
    if residual:
        worst = "; ".join(f"{g['type']} of {_party(g['party'])}: {g['devices']:,}" for g in by_group[:5])
        residual_headline = (f"{_plural(len(residual), 'device')} still {'trusts' if len(residual) == 1 else 'trust'}"
                             f" the compromised key, {key}: {worst}" + ("; ..." if len(by_group) > 5 else "") + ".")
    else:
        residual_headline = f"No device still trusts the compromised key, {key}."
    total = _minutes(run)
    headline = [
        f"Scenario {run['scenario']}, run {run['id']} (seed {run['seed']}), {run['status']}; started by "
        f"{run['started_by']} at {_when(run['started_at'])}" + (f", {_duration(total)} in all." if total is not None
                                                               else "; not ended."),
        f"Of {_plural(devices['total'], 'device')}, {devices['recovered']:,} recovered, "
        f"{devices['not_affected']:,} not affected, {len(devices['failed']):,} failed.",
    ]
    facts = [("Run", str(run["id"])), ("Scenario", f"{run['scenario']}: {run['title']}"), ("Seed", str(run["seed"])),
             ("Status", run["status"]), ("Started by", run["started_by"]), ("Started", _when(run["started_at"])),
             ("Ended", _when(run["ended_at"])),
             ("Estate", f"{_plural(run['estate']['devices'], 'device')}: " + (", ".join(
                 f"{kind} {count:,}" for kind, count in sorted(run["estate"]["by_type"].items())) or "none")),
             ("Compromised key", key),
             ("Its certificates", ", ".join(compromised["serials"]) or "none named")]
    tables: dict[str, Rows] = {}
    shown, more = _capped(by_group, rows)
    tables["residual_by_type_party"] = Rows(
        "Residual exposure by device type and Party", ("Device type", "Party", "Devices"),
        [(g["type"], _party(g["party"]), f"{g['devices']:,}") for g in shown], more,
        "None: no device still trusts the compromised key.", frozenset({2}), (0.4, 0.45, 0.15))
    shown, more = _capped(residual, rows)
    tables["residual"] = Rows(
        "Devices still trusting the compromised key", ("Device", "Type", "Party", "Cells"),
        [(d["device_id"], d["type"], _party(d["party"]), ", ".join(d["cells"]) or "none recorded") for d in shown],
        more, "None.", widths=(0.25, 0.12, 0.25, 0.38))
    shown, more = _capped(devices["failed"], rows)
    tables["failed"] = Rows(
        "Devices that failed", ("Device", "Type", "Party", "GBCS status codes", "Reason"),
        [(d["device_id"], d["type"], _party(d["party"]),
          "; ".join(f"{cell}: {status_name(code)}" for cell, code in sorted(d["codes"].items())) or "no response",
          d["reason"]) for d in shown], more, "None: every device sent a command answered.",
        widths=(0.18, 0.08, 0.16, 0.3, 0.28))
    phase_rows: list[tuple[str, ...]] = []
    phase_marks: list[str] = []
    for phase in record["phases"]:
        taken = _minutes(phase)
        phase_rows.append((phase["name"], _when(phase["started_at"]), _when(phase["ended_at"]), _duration(taken),
                           _duration(phase["target_minutes"]) or "none", _against(taken, phase["target_minutes"])))
        phase_marks.append("over" if _against(taken, phase["target_minutes"]).endswith("over") else "")
    tables["phases"] = Rows("Time each phase took against its target",
                            ("Phase", "Started", "Ended", "Took", "Target", "Against target"), phase_rows, 0,
                            "No phase recorded.", frozenset({3, 4}), (0.16, 0.2, 0.2, 0.12, 0.12, 0.2), phase_marks, 5)
    shown, more = _capped(record["steps"], rows)
    step_rows: list[tuple[str, ...]] = []
    step_marks: list[str] = []
    for number, step in enumerate(shown, start=1):
        taken = _minutes(step)
        against = _against(taken, step["target_minutes"])
        step_rows.append((str(number), step["phase"], step["title"], step["actor_role"], step["actor"],
                          _when(step["started_at"]), _duration(taken), _duration(step["target_minutes"]) or "none",
                          against, step["outcome"], ", ".join(step["artefacts"])))
        step_marks.append(" ".join(mark for mark, applies in (("failed", step["outcome"] == "failed"),
                                                              ("over", against.endswith("over"))) if applies))
    tables["steps"] = Rows("Each step: who did it, when, how long against its target, and its outcome",
                           ("#", "Phase", "Step", "Actor role", "Actor", "Started", "Took", "Target",
                            "Against target", "Outcome", "Artefacts"), step_rows, more, "No step recorded.",
                           frozenset({0, 6, 7}), (0.03, 0.08, 0.18, 0.08, 0.1, 0.11, 0.06, 0.06, 0.08, 0.06, 0.16),
                           step_marks, 8)
    shown, more = _capped(record["artefacts"], rows)
    tables["artefacts"] = Rows("Artefacts of the drill", ("File", "Kind", "Description"),
                               [(a["path"], a["kind"], a["description"]) for a in shown], more, "None.",
                               widths=(0.35, 0.1, 0.55))
    return View(f"Recovery drill {run['id']}: {run['title']}", headline, bool(residual), residual_headline, facts,
                tables, f"drill-{run['id']}-evidence.zip")


# ---------------------------------------------------------------------------------------------- the charts
def _bars(record: Mapping[str, Any]) -> tuple[list[charts.Bar], float]:
    start = _parse_time(record["run"]["started_at"])

    def at(text: str) -> float:
        return (_parse_time(text) - start).total_seconds() / 60

    bars: list[charts.Bar] = []
    for phase in record["phases"]:
        bars.append(charts.Bar(phase["name"], at(phase["started_at"]),
                               None if phase["ended_at"] is None else at(phase["ended_at"]),
                               phase["target_minutes"], "phase"))
        bars += [charts.Bar(step["title"], at(step["started_at"]),
                            None if step["ended_at"] is None else at(step["ended_at"]), step["target_minutes"],
                            step["outcome"]) for step in record["steps"] if step["phase"] == phase["name"]]
    times = [record["run"]["ended_at"], *(i["ended_at"] for i in (*record["phases"], *record["steps"])),
             *(i["started_at"] for i in (*record["phases"], *record["steps"]))]
    until = max([0.0, *(at(t) for t in times if t is not None)])
    return bars, until


def _charts(record: Mapping[str, Any]) -> dict[str, Any]:
    run = record["run"]
    bars, until = _bars(record)
    start = _parse_time(run["started_at"])
    points = [((_parse_time(p["at"]) - start).total_seconds() / 60, p["recovered"]) for p in record["recovery_curve"]]
    devices = record["devices"]
    timeline = charts.timeline(bars, until=until)
    recovery = charts.recovery(points, affected=devices["total"] - devices["not_affected"], until=until)
    return {"timeline_svg": charts.to_svg(timeline, f"drill-{run['id']}-timeline"),
            "recovery_svg": charts.to_svg(recovery, f"drill-{run['id']}-recovery"),
            "timeline_png": charts.to_png(timeline), "recovery_png": charts.to_png(recovery)}


# ---------------------------------------------------------------------------------------------- HTML and PDF
@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("smki.drills", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def to_html(shown: View, drawn: Mapping[str, Any]) -> bytes:
    # the charts are matplotlib's own SVG, which escapes the record's text itself
    return _templates().get_template("drill-report.html").render(
        view=shown, timeline_svg=Markup(drawn["timeline_svg"]), recovery_svg=Markup(drawn["recovery_svg"])).encode()


FONT = "DejaVuSans"


def _register_fonts() -> str:
    """DejaVu Sans, the charts' font, which matplotlib ships: the PDF's standard fonts have no glyphs beyond
    Latin-1, and a Party's or a custodian's name may need them."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        directory = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont(FONT, str(directory / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(f"{FONT}-Bold", str(directory / "DejaVuSans-Bold.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=f"{FONT}-Bold", italic=FONT, boldItalic=f"{FONT}-Bold")
    return FONT


def _text(value: str, limit: int = PDF_CELL_CHARACTERS) -> str:
    value = value if len(value) <= limit else value[:limit - 1] + "\u2026"
    return html.escape(value, quote=False)


def _pdf_table(table: Rows, width: float, style: ParagraphStyle, heading: ParagraphStyle) -> list[Flowable]:
    if not table.rows:
        return [Paragraph(_text(table.empty), style)]
    widths = [width * part for part in table.widths] if table.widths else None
    grid = Table([[Paragraph(_text(h), heading) for h in table.headings],
                  *[[Paragraph(_text(cell), style) for cell in row] for row in table.rows]],
                 colWidths=widths, repeatRows=1)
    commands: list[Any] = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6"))]
    commands += [("BACKGROUND", (0, i + 1), (-1, i + 1), colors.HexColor("#fde2e1"))
                 for i, mark in enumerate(table.marks) if "failed" in mark.split()]
    grid.setStyle(TableStyle(commands))
    flowables: list[Flowable] = [grid]
    if table.more:
        flowables.append(Paragraph(f"and {table.more:,} more: every row is in the JSON record and the evidence zip.",
                                   style))
    return flowables


def _image(png: bytes, width: float) -> Image:
    image = Image(io.BytesIO(png))
    scale = width / image.imageWidth
    image.drawWidth, image.drawHeight = width, image.imageHeight * scale
    return image


def to_pdf(shown: View, drawn: Mapping[str, Any]) -> bytes:
    font = _register_fonts()
    sample = getSampleStyleSheet()
    body = ParagraphStyle("drill-body", parent=sample["BodyText"], fontName=font, fontSize=9, leading=11)
    small = ParagraphStyle("drill-small", parent=body, fontSize=7, leading=8.5)
    bold = ParagraphStyle("drill-heading", parent=small, fontName=f"{font}-Bold")
    title = ParagraphStyle("drill-title", parent=sample["Title"], fontName=f"{font}-Bold")
    section = ParagraphStyle("drill-section", parent=sample["Heading2"], fontName=f"{font}-Bold")
    out = io.BytesIO()
    page = landscape(A4)
    document = SimpleDocTemplate(out, pagesize=page, title=shown.title, author="DCC (SMKI sandbox)",
                                 subject="SMKI recovery drill report", invariant=1,
                                 leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm)
    width = page[0] - 24 * mm
    story: list[Flowable] = [Paragraph(_text(shown.title, 500), title)]
    story += [Paragraph(_text(p, 2000), body) for p in shown.headline]
    story.append(Paragraph(f"<b>{_text(shown.residual_headline, 2000)}</b>", body))
    facts = Table([[Paragraph(_text(label), bold), Paragraph(_text(value), small)] for label, value in shown.facts],
                  colWidths=[0.18 * width, 0.82 * width])
    facts.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [Spacer(1, 3 * mm), facts, Paragraph("Timeline", section), _image(drawn["timeline_png"], width)]
    sections = (("Residual exposure", ("residual_by_type_party", "residual")), ("Failed devices", ("failed",)),
                ("Devices recovered over time", ()), ("Phases against their targets", ("phases",)),
                ("Who did what", ("steps",)), ("Artefacts", ("artefacts",)))
    for heading, keys in sections:
        story.append(Paragraph(heading, section))
        if not keys:
            story.append(_image(drawn["recovery_png"], width * 0.9))
        for key in keys:
            story += [Paragraph(_text(shown.tables[key].caption), bold), Spacer(1, 1 * mm),
                      *_pdf_table(shown.tables[key], width, small, bold), Spacer(1, 3 * mm)]
    document.build(story)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- the evidence
def _zip_time(record: Mapping[str, Any]) -> tuple[int, int, int, int, int, int]:
    """Every member's time: the drill's start (UTC), so the same drill zips to the same bytes."""
    start = _parse_time(record["run"]["started_at"])
    if not 1980 <= start.year <= 2107:  # what a zip's DOS date can hold
        return ZIP_EPOCH
    return start.year, start.month, start.day, start.hour, start.minute, start.second


def _member(archive: zipfile.ZipFile, name: str, when: tuple[int, int, int, int, int, int],
            chunks: Iterable[bytes]) -> str:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    digest = hashlib.sha256()
    with archive.open(info, "w", force_zip64=True) as member:
        for chunk in chunks:
            digest.update(chunk)
            member.write(chunk)
    return digest.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            yield chunk


def write_evidence(target: Path, record: Mapping[str, Any], documents: Mapping[str, bytes],
                   artefacts: Sequence[tuple[str, Path]]) -> None:
    """The evidence zip: the report's documents at the top, every artefact file under ``artefacts/``, and a
    ``MANIFEST`` in ``sha256sum`` layout (``sha256sum -c MANIFEST`` checks an unzipped copy)."""
    when = _zip_time(record)
    lines = []
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for name, content in documents.items():
            lines.append(f"{_member(archive, name, when, [content])}  {name}")
        for relative, path in artefacts:
            name = f"artefacts/{relative}"
            lines.append(f"{_member(archive, name, when, _file_chunks(path))}  {name}")
        _member(archive, "MANIFEST", when, [("\n".join(lines) + "\n").encode()])


# ---------------------------------------------------------------------------------------------- render
def report_files(out_dir: Path, run_id: int) -> ReportFiles:
    """Where :func:`render` writes run ``run_id``'s report in ``out_dir`` (whether it has yet or not)."""
    stem = f"drill-{run_id}"
    return ReportFiles(out_dir / f"{stem}.html", out_dir / f"{stem}.pdf", out_dir / f"{stem}.json",
                       out_dir / f"{stem}-evidence.zip")


def render(record: dict[str, Any], artefacts_dir: Path, out_dir: Path, *, rows: int = TABLE_ROWS) -> ReportFiles:
    """Write ``drill-<id>.json``, ``.html``, ``.pdf`` and ``-evidence.zip`` into ``out_dir``; refuse a malformed
    record (``DR:REP01``/``DR:REP02``) or a missing artefact (``DR:REP03``) before writing anything."""
    record, encoded = _checked(record)
    artefacts = artefact_files(record, artefacts_dir)
    run_id = record["run"]["id"]
    shown = view(record, rows=rows)
    drawn = _charts(record)
    stem = f"drill-{run_id}"
    files = report_files(out_dir, run_id)
    documents = {files.json.name: encoded, files.html.name: to_html(shown, drawn), files.pdf.name: to_pdf(shown, drawn)}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=out_dir))
        try:
            for name, content in documents.items():
                (staging / name).write_bytes(content)
            write_evidence(staging / files.evidence_zip.name, record, documents, artefacts)
            for target in (files.json, files.html, files.pdf, files.evidence_zip):
                os.replace(staging / target.name, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise SmkiError(NOT_WRITTEN, f"the report of drill {run_id} could not be written to {out_dir}: "
                        f"{error.strerror or error}; nothing was lodged", field="out_dir") from error
    return files


# ---------------------------------------------------------------------------------------------- lodge
def document_name(run_id: int, fmt: str) -> str:
    return f"drill-{run_id}-{fmt}"


def _read_report(run_id: int, files: ReportFiles) -> tuple[dict[str, bytes], str]:
    """The three files' bytes, and the drill's title from its record."""
    stem = f"drill-{run_id}"
    contents: dict[str, bytes] = {}
    for fmt, path in (("html", files.html), ("pdf", files.pdf), ("json", files.json)):
        if path.name != f"{stem}.{fmt}":
            raise SmkiError(NOT_THIS_RUN, f"{path.name} is not the {fmt.upper()} report of drill {run_id} "
                            f"({stem}.{fmt})", field=fmt)
        try:
            contents[fmt] = path.read_bytes()
        except OSError as error:
            raise SmkiError(NOT_THIS_RUN, f"the {fmt.upper()} report of drill {run_id} cannot be read at {path}: "
                            f"{error.strerror or error}; render it again", field=fmt) from error
        if len(contents[fmt]) > MAX_DOCUMENT_BYTES:
            raise SmkiError(TOO_LARGE, f"{path.name} is {len(contents[fmt]):,} bytes, more than the Repository "
                            f"takes ({MAX_DOCUMENT_BYTES:,}); nothing was lodged. The evidence zip keeps it.",
                            field=fmt)
    try:
        run = json.loads(contents["json"])["run"]
        lodged_id, title = run["id"], str(run.get("title") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        lodged_id, title = None, ""
    if lodged_id != run_id:
        raise SmkiError(NOT_THIS_RUN, f"{files.json.name} is not the record of drill {run_id}: render the report "
                        "again", field="json")
    return contents, title or "recovery drill"


def lodge(host_instance: Instance, run_id: int, files: ReportFiles, *, replace: bool = False,
          lodged_by: str = LODGED_BY) -> LodgedReport:
    """Lodge the run's HTML, PDF and JSON in the Repository as the documents ``drill-<id>-html|pdf|json``,
    readable only by the Repository roles ``smki_pma`` and ``sec_panel`` (:mod:`repository.audience`; every
    other reader is not shown that they exist).

    Once per report: where the newest version of a document already holds these bytes it is kept, not
    lodged again, so lodging the same run twice changes nothing (``lodged`` False). Where it holds other
    bytes the run's report is refused (``DR:REP04``) unless ``replace``, which lodges the new report as the
    next version of each document (the Repository keeps the earlier ones). Everything is checked before
    the first document is lodged; a lodging cut short is completed by calling again."""
    contents, title = _read_report(run_id, files)
    store = DocumentStore(host_instance.database)
    newest: dict[str, DocumentVersion | None] = {}
    for fmt, content in contents.items():
        versions = store.versions(document_name(run_id, fmt), reader_roles=AUDIENCE)
        newest[fmt] = versions[0] if versions else None
        current = newest[fmt]
        if current is not None and current.sha256 != hashlib.sha256(content).hexdigest() and not replace:
            raise SmkiError(LODGED_OTHERWISE, f"the report of drill {run_id} is lodged already as {current.name} "
                            f"version {current.version} ({current.lodged_at:%Y-%m-%d %H:%M} UTC) with other "
                            "content; lodge with replace to make this report its next version", field=fmt)
    documents: dict[str, DocumentVersion] = {}
    for fmt, content in contents.items():
        current = newest[fmt]
        if current is not None and current.sha256 == hashlib.sha256(content).hexdigest():
            documents[fmt] = current
            continue
        documents[fmt] = store.lodge(document_name(run_id, fmt), content,
                                     title=f"Recovery drill {run_id}: {title} ({fmt.upper()})",
                                     media_type=MEDIA_TYPES[fmt], lodged_by=lodged_by,
                                     file_name=f"drill-{run_id}.{fmt}", audience=AUDIENCE)
    lodged = any(documents[fmt] is not newest[fmt] for fmt in documents)
    return LodgedReport(documents["html"], documents["pdf"], documents["json"], lodged)
