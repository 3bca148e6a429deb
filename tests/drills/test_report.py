"""The drill report: a hand-written record covering every field of the drill record (the runner is built
beside it), rendered to JSON, HTML, PDF and the evidence zip; what people must find in them (the residual
exposure, the failed devices and their status codes, the phases and steps against their targets, who did
what), the evidence zip's manifest, the caps on large estates, and the coded refusal of a malformed record."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from smki.core.errors import SmkiError
from smki.drills import report
from smki.drills.report import ReportFiles, render

START = "2026-12-03T10:00:00Z"
RTDS_COMMAND = "D9 00 00 00 00 00 00 01 02 0B 00 00 00 00 00 00 00 01 00 CB 01 02\n"

# one file of every kind the runner keeps, as the runner lays them out under <world>/artefacts/
ARTEFACTS = {
    "notification/organisation-compromise.json": ('{"notified_by": "Alpha Energy"}', "notification",
                                                  "Organisation Compromise Notification File"),
    "progress/progress-0001.csv": ("phase,devices\nExecution,3\n", "progress", "Recovery Progress File"),
    "commands/00-0A-00-00-00-00-00-01_GBCS.HEX": (RTDS_COMMAND, "command",
                                                  "CS02b mode 8 command to 00-0A-00-00-00-00-00-01 (RTDS hex)"),
    "responses/00-0A-00-00-00-00-00-01_GBCS.HEX": ("DF 09 00 00\n", "response", "its response"),
    "certificates/new-supplier-ds.pem": ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                                         "certificate", "Alpha Energy's new Organisation Certificate"),
    "crl/crl-0002.crl": ("not really DER", "crl", "CRL with the compromised certificate"),
    "arl/arl-0001.arl": ("not really DER", "arl", "ARL"),
    "cells/before.csv": ("device,cell,ski\n", "cells", "every device's cells before the drill"),
}


def step(index: int, phase: str, title: str, role: str, actor: str, start_minute: float, minutes: float | None,
         target: float | None, outcome: str = "done", artefacts: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": f"s{index:02d}", "phase": phase, "title": title, "actor_role": role, "actor": actor,
            "started_at": at(start_minute), "ended_at": None if minutes is None else at(start_minute + minutes),
            "target_minutes": target, "outcome": outcome, "detail": {"note": f"step {index}"},
            "artefacts": list(artefacts)}


def at(minute: float) -> str:
    seconds = int(minute * 60)
    return f"2026-12-03T{10 + seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"


def drill_record(run_id: int = 7) -> dict[str, Any]:
    """A finished method 3 drill over six devices: three recovered, one not affected, one failed twice over
    (badCertificate, then resourcesBusy), and one still trusting the compromised key."""
    return {
        "run": {"id": run_id, "scenario": "organisation-key-method-3", "title": "Supplier DS key, method 3",
                "seed": 1234, "status": "completed", "started_at": START, "ended_at": at(95),
                "started_by": "pma:Priya Member",
                "estate": {"devices": 6, "by_type": {"ESME": 3, "GSME": 2, "CHF": 1}},
                "compromised": {"key": "Organisation key", "role": "supplier", "party": "Alpha Energy",
                                "serials": ["0a1b2c", "FF00"]}},
        "phases": [
            {"name": "Pre-Recovery", "started_at": START, "ended_at": at(30), "target_minutes": 20.0},
            {"name": "Execution", "started_at": at(30), "ended_at": at(80), "target_minutes": 60},
            {"name": "Post-Recovery", "started_at": at(80), "ended_at": at(95), "target_minutes": None},
        ],
        "steps": [
            step(1, "Pre-Recovery", "Compromise notified", "supplier", "Alpha Energy ARO", 0, 5, 10,
                 artefacts=("notification/organisation-compromise.json",)),
            step(2, "Pre-Recovery", "DCC confirms the compromise", "dcc_operator", "DCC duty manager", 5, 25, 10),
            step(3, "Execution", "Key ceremony: Recovery key", "key_custodian", "custodians 1, 3, 4", 30, 10, 15),
            step(4, "Execution", "Revoke onto the CRL", "dcc_operator", "CA", 40, 1, None,
                 artefacts=("crl/crl-0002.crl",)),
            step(5, "Execution", "Mode 8 commands to every affected device", "dcc_operator", "DCC", 41, 39, 30,
                 "failed", artefacts=("commands/00-0A-00-00-00-00-00-01_GBCS.HEX",
                                      "responses/00-0A-00-00-00-00-00-01_GBCS.HEX")),
            step(6, "Post-Recovery", "Residual exposure check", "pma", "SMKI PMA", 80, 15, 20, "skipped"),
        ],
        "devices": {
            "total": 6, "recovered": 3, "not_affected": 1,
            "failed": [{"device_id": "00-0A-00-00-00-00-00-05", "type": "GSME", "party": "Alpha Energy",
                        "codes": {"supplier.digitalSignature": 5, "supplier.keyAgreement": 30},
                        "reason": "method 1 refused; escalated to method 3, refused again"}],
            "residual": [{"device_id": "00-0A-00-00-00-00-00-05", "type": "GSME", "party": "Alpha Energy",
                          "cells": ["supplier.digitalSignature"]}],
            "residual_by_type_party": [{"type": "GSME", "party": "Alpha Energy", "devices": 1}],
        },
        "recovery_curve": [{"at": at(41), "recovered": 0}, {"at": at(60), "recovered": 2},
                           {"at": at(80), "recovered": 3}],
        "artefacts": [{"path": path, "kind": kind, "description": description}
                      for path, (_content, kind, description) in ARTEFACTS.items()],
    }


def write_artefacts(directory: Path) -> Path:
    for relative, (content, _kind, _description) in ARTEFACTS.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(content)
    return directory


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    return write_artefacts(tmp_path / "world" / "artefacts")


@pytest.fixture
def rendered(tmp_path: Path, artefacts: Path) -> ReportFiles:
    return render(drill_record(), artefacts, tmp_path / "out")


def text_of(files: ReportFiles) -> str:
    return " ".join(lxml.html.fromstring(files.html.read_bytes()).text_content().split())


def table(files: ReportFiles, table_id: str) -> list[list[str]]:
    page = lxml.html.fromstring(files.html.read_bytes())
    return [[" ".join(cell.text_content().split()) for cell in row.xpath("td")]
            for row in page.xpath(f'//table[@id="{table_id}"]/tbody/tr')]


# ------------------------------------------------------------------------------------------ the four files
def test_render_writes_the_four_files_named_after_the_run(rendered: ReportFiles, tmp_path: Path) -> None:
    assert rendered == ReportFiles(*(tmp_path / "out" / name for name in (
        "drill-7.html", "drill-7.pdf", "drill-7.json", "drill-7-evidence.zip")))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["drill-7.html", "drill-7.pdf", "drill-7.json", "drill-7-evidence.zip"])  # no staging left behind
    assert json.loads(rendered.json.read_text()) == drill_record()


def test_the_html_names_the_residual_exposure_by_type_and_party_and_the_failed_devices(
        rendered: ReportFiles) -> None:
    text = text_of(rendered)
    assert ("1 device still trusts the compromised key, Organisation key (supplier) of Alpha Energy: GSME of "
            "Alpha Energy: 1.") in text
    assert table(rendered, "residual-by-type-party") == [["GSME", "Alpha Energy", "1"]]
    assert table(rendered, "residual-devices") == [["00-0A-00-00-00-00-00-05", "GSME", "Alpha Energy",
                                                    "supplier.digitalSignature"]]
    assert table(rendered, "failed-devices") == [[
        "00-0A-00-00-00-00-00-05", "GSME", "Alpha Energy",
        "supplier.digitalSignature: 5 badCertificate; supplier.keyAgreement: 30 resourcesBusy",
        "method 1 refused; escalated to method 3, refused again"]]
    assert "Of 6 devices, 3 recovered, 1 not affected, 1 failed." in text


def test_the_html_shows_each_phase_and_step_against_its_target_and_who_did_it(rendered: ReportFiles) -> None:
    assert table(rendered, "phase-table") == [
        ["Pre-Recovery", "2026-12-03 10:00:00 UTC", "2026-12-03 10:30:00 UTC", "30.0 min", "20.0 min",
         "10.0 min over"],
        ["Execution", "2026-12-03 10:30:00 UTC", "2026-12-03 11:20:00 UTC", "50.0 min", "60.0 min",
         "10.0 min under"],
        ["Post-Recovery", "2026-12-03 11:20:00 UTC", "2026-12-03 11:35:00 UTC", "15.0 min", "none", "no target"]]
    steps = table(rendered, "step-table")
    assert [row[1:5] + row[8:10] for row in steps] == [
        ["Pre-Recovery", "Compromise notified", "supplier", "Alpha Energy ARO", "5.0 min under", "done"],
        ["Pre-Recovery", "DCC confirms the compromise", "dcc_operator", "DCC duty manager", "15.0 min over", "done"],
        ["Execution", "Key ceremony: Recovery key", "key_custodian", "custodians 1, 3, 4", "5.0 min under", "done"],
        ["Execution", "Revoke onto the CRL", "dcc_operator", "CA", "no target", "done"],
        ["Execution", "Mode 8 commands to every affected device", "dcc_operator", "DCC", "9.0 min over", "failed"],
        ["Post-Recovery", "Residual exposure check", "pma", "SMKI PMA", "5.0 min under", "skipped"]]
    assert steps[4][10] == ("commands/00-0A-00-00-00-00-00-01_GBCS.HEX, "
                            "responses/00-0A-00-00-00-00-00-01_GBCS.HEX")
    page = lxml.html.fromstring(rendered.html.read_bytes())
    assert page.xpath('//table[@id="step-table"]/tbody/tr/@class') == ["", "over", "", "", "failed over", ""]


def test_the_html_is_self_contained_with_both_charts_as_svg(rendered: ReportFiles) -> None:
    page = rendered.html.read_text()
    assert page.count("<svg") == 2 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert not re.search(r"""(src|href)=["'](https?:|//)""", page)  # nothing fetched from elsewhere
    assert "<script" not in page and "<link" not in page
    for label in ("Compromise notified", "Pre-Recovery", "Devices recovered over time", "devices to recover"):
        assert label in page  # text in the SVG stays text
    figures = lxml.html.fromstring(page.encode()).xpath("//figure")
    assert len(figures) == 2


def test_the_pdf_opens_with_its_pages_and_both_charts(rendered: ReportFiles) -> None:
    pdf = rendered.pdf.read_bytes()
    try:
        import pypdf
    except ImportError:  # not a dependency: check the structure reportlab writes
        assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
        pages = [int(n) for n in re.findall(rb"/Count (\d+) /Kids", pdf)]
        assert pages and pages[0] >= 2
        assert len(re.findall(rb"/Subtype /Image", pdf)) >= 2  # the two charts (and their alpha masks)
        assert b"/Title (Recovery drill 7: Supplier DS key, method 3)" in pdf or b"/Title <" in pdf
    else:
        reader = pypdf.PdfReader(rendered.pdf)
        assert len(reader.pages) >= 2
        text = " ".join(page.extract_text() for page in reader.pages)
        assert "00-0A-00-00-00-00-00-05" in text and "5 badCertificate" in text


def test_the_same_record_renders_to_the_same_bytes(rendered: ReportFiles, artefacts: Path, tmp_path: Path) -> None:
    again = render(drill_record(), artefacts, tmp_path / "again")
    for first, second in zip((rendered.html, rendered.pdf, rendered.json, rendered.evidence_zip),
                             (again.html, again.pdf, again.json, again.evidence_zip), strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


# ------------------------------------------------------------------------------------------ the evidence zip
def test_the_evidence_zip_holds_every_artefact_and_the_report_and_its_manifest_matches(
        rendered: ReportFiles, artefacts: Path) -> None:
    (artefacts / "unlisted.txt").write_text("kept too")   # not named by the record: still evidence
    with zipfile.ZipFile(rendered.evidence_zip) as archive:
        names = archive.namelist()
        manifest = archive.read("MANIFEST").decode()
        members = {name: archive.read(name) for name in names if name != "MANIFEST"}
    assert set(names) == {"MANIFEST", "drill-7.json", "drill-7.html", "drill-7.pdf",
                          *(f"artefacts/{path}" for path in ARTEFACTS)}
    listed = dict(reversed(line.split("  ", 1)) for line in manifest.splitlines())
    assert listed == {name: hashlib.sha256(content).hexdigest() for name, content in members.items()}
    assert members["drill-7.html"] == rendered.html.read_bytes()
    assert members["drill-7.pdf"] == rendered.pdf.read_bytes()
    assert members["drill-7.json"] == rendered.json.read_bytes()
    assert members["artefacts/commands/00-0A-00-00-00-00-00-01_GBCS.HEX"].decode() == RTDS_COMMAND


def test_the_evidence_zip_takes_files_not_named_by_the_record_and_refuses_a_link(
        tmp_path: Path, artefacts: Path) -> None:
    (artefacts / "cells" / "after.csv").write_text("device,cell,ski\n")
    files = render(drill_record(), artefacts, tmp_path / "out")
    with zipfile.ZipFile(files.evidence_zip) as archive:
        assert "artefacts/cells/after.csv" in archive.namelist()
    secret = tmp_path / "keystore.pem"
    secret.write_text("a private key")
    (artefacts / "keys.pem").symlink_to(secret)
    with pytest.raises(SmkiError) as refused:
        render(drill_record(), artefacts, tmp_path / "linked")
    assert refused.value.code == report.ARTEFACT_MISSING and "keys.pem" in refused.value.message
    assert not (tmp_path / "linked").exists()


def test_an_artefact_the_record_names_but_the_folder_lacks_is_refused_naming_it(
        tmp_path: Path, artefacts: Path) -> None:
    (artefacts / "crl" / "crl-0002.crl").unlink()
    with pytest.raises(SmkiError) as refused:
        render(drill_record(), artefacts, tmp_path / "out")
    assert refused.value.code == "DR:REP03" and refused.value.field == "artefacts/5/path"
    assert "crl/crl-0002.crl" in refused.value.message
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ large estates
def test_tables_are_capped_for_people_while_the_json_and_zip_keep_every_row(tmp_path: Path, artefacts: Path) -> None:
    record = drill_record()
    devices = record["devices"]
    devices["total"] = 5000
    devices["recovered"] = 3000
    devices["failed"] = [{"device_id": f"00-0A-00-00-00-01-{i // 256:02X}-{i % 256:02X}", "type": "ESME",
                          "party": f"Party {i % 7}", "codes": {"supplier.digitalSignature": 25},
                          "reason": "trust anchor not found"} for i in range(1200)]
    devices["residual"] = [{"device_id": d["device_id"], "type": "ESME", "party": d["party"],
                            "cells": ["supplier.digitalSignature"]} for d in devices["failed"]]
    counts: dict[str, int] = {}
    for d in devices["residual"]:
        counts[d["party"]] = counts.get(d["party"], 0) + 1
    devices["residual_by_type_party"] = [{"type": "ESME", "party": p, "devices": n} for p, n in counts.items()]
    files = render(record, artefacts, tmp_path / "out", rows=50)
    assert len(table(files, "failed-devices")) == 50 and len(table(files, "residual-devices")) == 50
    assert "and 1,150 more: every row is in the JSON record and the evidence zip." in text_of(files)
    assert len(table(files, "residual-by-type-party")) == 7
    assert "1,200 devices still trust the compromised key" in text_of(files)
    assert len(json.loads(files.json.read_text())["devices"]["failed"]) == 1200
    assert b"and 1,150 more" in files.pdf.read_bytes() or b"/Count" in files.pdf.read_bytes()
    with zipfile.ZipFile(files.evidence_zip) as archive:
        assert len(json.loads(archive.read("drill-7.json"))["devices"]["residual"]) == 1200


# ------------------------------------------------------------------------------------------ other outcomes
def test_a_clean_drill_says_no_device_still_trusts_the_compromised_key(tmp_path: Path, artefacts: Path) -> None:
    record = drill_record()
    record["devices"].update(recovered=5, failed=[], residual=[], residual_by_type_party=[])
    files = render(record, artefacts, tmp_path / "out")
    text = text_of(files)
    assert "No device still trusts the compromised key, Organisation key (supplier) of Alpha Energy." in text
    assert table(files, "failed-devices") == [["None: every device sent a command answered."]]


def test_a_paused_drill_shows_what_has_not_ended(tmp_path: Path, artefacts: Path) -> None:
    record = drill_record()
    record["run"].update(status="paused", ended_at=None)
    record["phases"][2]["ended_at"] = None
    record["steps"][5]["ended_at"] = None
    record["recovery_curve"] = []
    files = render(record, artefacts, tmp_path / "out")
    assert "completed" not in table(files, "phase-table")[2]
    assert table(files, "phase-table")[2][2:] == ["not ended", "", "none", "not ended"]
    assert "paused; started by pma:Priya Member at 2026-12-03 10:00:00 UTC; not ended." in text_of(files)


def test_text_from_the_record_is_escaped_everywhere(tmp_path: Path, artefacts: Path) -> None:
    record = drill_record()
    record["steps"][0]["title"] = "<script>alert(1)</script> costs $5 and $6"
    record["devices"]["failed"][0]["reason"] = "</td><b>bold</b> & more"
    files = render(record, artefacts, tmp_path / "out")
    page = files.html.read_text()
    assert "<script>" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; costs $5 and $6" in page
    assert files.pdf.read_bytes().startswith(b"%PDF-")


# ------------------------------------------------------------------------------------------ malformed records
def damaged(change: str) -> dict[str, Any]:
    record = drill_record()
    exec(change, {"r": record, "nan": float("nan")})
    return record


@pytest.mark.parametrize(("change", "code", "field"), [
    ("del r['steps'][2]['actor']", "DR:REP01", "steps/2/actor"),
    ("r['phases'][1]['started_at'] = '2026-12-03 10:30'", "DR:REP01", "phases/1/started_at"),
    ("r['phases'][1]['started_at'] = '2026-12-03T10:30:00'", "DR:REP01", "phases/1/started_at"),  # no offset
    ("r['steps'][0]['target_minutes'] = nan", "DR:REP01", "steps/0/target_minutes"),
    ("r['run']['started_at'] = '0001-01-01T00:00:00+14:00'", "DR:REP01", "run/started_at"),  # before year 1 UTC
    ("r['steps'][0]['target_minutes'] = -3", "DR:REP01", "steps/0/target_minutes"),
    ("r['steps'][3]['outcome'] = 'maybe'", "DR:REP01", "steps/3/outcome"),
    ("r['run']['estate']['colour'] = 'blue'", "DR:REP01", "run/estate/colour"),
    ("r['devices']['failed'][0]['codes']['root'] = 256", "DR:REP01", "devices/failed/0/codes/root"),
    ("r['artefacts'][0]['path'] = '../../instance/keys/root.pem'", "DR:REP01", "artefacts/0/path"),
    ("r['run']['id'] = '7'", "DR:REP01", "run/id"),
    ("r['run']['compromised']['serials'] = ('0a',)", "DR:REP01", "run/compromised/serials"),
    ("r['run']['title'] = 'a\\x00b'", "DR:REP01", "run/title"),
    ("r['steps'][1]['phase'] = 'Post-Recovery'; del r['phases'][2]", "DR:REP02", "steps/1/phase"),
    ("r['steps'][1]['ended_at'] = '2026-12-03T09:00:00Z'", "DR:REP02", "steps/1/ended_at"),
    ("r['devices']['recovered'] = 6", "DR:REP02", "devices/recovered"),
    ("r['devices']['residual_by_type_party'][0]['devices'] = 2", "DR:REP02", "devices/residual_by_type_party"),
    ("r['run']['estate']['by_type']['ESME'] = 4", "DR:REP02", "run/estate/by_type"),
    ("r['steps'][4]['id'] = 's01'", "DR:REP02", "steps/4/id"),
])
def test_a_malformed_record_is_refused_with_a_code_naming_the_field(
        change: str, code: str, field: str, tmp_path: Path, artefacts: Path) -> None:
    with pytest.raises(SmkiError) as refused:
        render(damaged(change), artefacts, tmp_path / "out")
    assert (refused.value.code, refused.value.field) == (code, field), refused.value.message
    assert field in refused.value.message
    assert not (tmp_path / "out").exists()   # nothing written


def test_the_record_is_not_changed_by_rendering(tmp_path: Path, artefacts: Path) -> None:
    record = drill_record()
    kept = copy.deepcopy(record)
    render(record, artefacts, tmp_path / "out")
    assert record == kept


def test_an_unwritable_folder_is_a_coded_error(tmp_path: Path, artefacts: Path) -> None:
    blocked = tmp_path / "file-in-the-way"
    blocked.write_text("")
    with pytest.raises(SmkiError) as refused:
        render(drill_record(), artefacts, blocked / "out")
    assert refused.value.code == "DR:REP07"
