"""Lodging a drill report in the Repository: the HTML, PDF and JSON as documents for the SMKI PMA and the SEC
Panel alone (a Repository user without those roles is not shown that they exist, through the store and the
JSON API), once per report (the same run lodged again changes nothing; another report of the run is
refused unless replacing), and nothing lodged when the files are not the run's."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from repository.access import RepositoryAccess
from repository.documents import DocumentStore
from repository.errors import RepositoryError
from smki.core.errors import SmkiError
from smki.drills import report
from smki.drills.report import ReportFiles, lodge, render
from smki.instance import Instance
from tests.drills.test_report import drill_record, write_artefacts
from tests.repository.conftest import access, app, client  # noqa: F401  (fixtures)
from tests.repository.test_document_audience import PASSWORD, log_in

NAMES = ("drill-7-html", "drill-7-pdf", "drill-7-json")


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    return write_artefacts(tmp_path / "world" / "artefacts")


@pytest.fixture
def files(tmp_path: Path, artefacts: Path) -> ReportFiles:
    return render(drill_record(), artefacts, tmp_path / "out")


def test_the_report_is_lodged_for_the_pma_and_the_panel_alone(instance: Instance, files: ReportFiles) -> None:
    lodged = lodge(instance, 7, files)
    assert lodged.names == NAMES and lodged.lodged
    assert str(lodged) == "drill-7-html v1, drill-7-pdf v1, drill-7-json v1"
    store = DocumentStore(instance.database)
    for outsider in ((), ("unrelated",)):
        assert not [d for d in store.latest(reader_roles=outsider) if d.name.startswith("drill-")]
        for name in NAMES:
            assert store.versions(name, reader_roles=outsider) == []
            with pytest.raises(RepositoryError) as hidden:
                store.content(name, reader_roles=outsider)
            assert (hidden.value.code, hidden.value.status) == ("RP:DOC7", 404)
    for role in ("smki_pma", "sec_panel"):
        shown = {d.name: d for d in store.latest(reader_roles={role}) if d.name.startswith("drill-")}
        assert set(shown) == set(NAMES)
        assert {d.audience for d in shown.values()} == {frozenset({"smki_pma", "sec_panel"})}
        assert {d.media_type for d in shown.values()} == {"text/html", "application/pdf", "application/json"}
        assert shown["drill-7-json"].file_name == "drill-7.json"
        assert store.content("drill-7-html", reader_roles={role})[1] == files.html.read_bytes()
        assert store.content("drill-7-pdf", reader_roles={role})[1] == files.pdf.read_bytes()
        assert json.loads(store.content("drill-7-json", reader_roles={role})[1]) == drill_record()


def test_the_json_api_hides_the_report_from_a_key_and_a_user_without_the_roles(
        instance: Instance, files: ReportFiles, client: FlaskClient, access: RepositoryAccess) -> None:  # noqa: F811
    lodge(instance, 7, files)

    def view(headers: dict[str, str]) -> tuple[set[str], list[tuple[int, str]]]:
        listed = client.get("/api/v1/repository/documents", headers=headers).get_json()["documents"]
        answers = []
        for name in NAMES:
            response = client.get(f"/api/v1/repository/documents/{name}/content", headers=headers)
            answers.append((response.status_code, (response.get_json(silent=True) or {}).get("code", "")))
        return {d["name"] for d in listed if d["name"].startswith("drill-")}, answers

    key = access.issue_api_key("party:ACME/aro:1")
    assert view({"X-API-Key": key}) == (set(), [(404, "RP:DOC7")] * 3)
    access.create_user("aro-plain", PASSWORD, "party:ACME/aro:2")
    log_in(client, "aro-plain")
    assert view({}) == (set(), [(404, "RP:DOC7")] * 3)
    access.create_user("pma-reader", PASSWORD, "smki-pma/person:1", roles=["smki_pma"])
    log_in(client, "pma-reader")
    assert view({}) == (set(NAMES), [(200, "")] * 3)
    assert client.get("/api/v1/repository/documents/drill-7-pdf/content").data == files.pdf.read_bytes()


def test_lodging_the_same_run_again_makes_no_second_version(
        instance: Instance, files: ReportFiles, artefacts: Path, tmp_path: Path) -> None:
    first = lodge(instance, 7, files)
    again = lodge(instance, 7, files)
    assert not again.lodged and again == dataclasses.replace(first, lodged=False)
    rerendered = render(drill_record(), artefacts, tmp_path / "elsewhere")  # the same record: the same bytes
    assert not lodge(instance, 7, rerendered).lodged
    store = DocumentStore(instance.database)
    assert [[v.version for v in store.versions(name, reader_roles={"smki_pma"})] for name in NAMES] == [[1]] * 3


def test_another_report_of_the_run_is_refused_unless_replacing(
        instance: Instance, files: ReportFiles, artefacts: Path, tmp_path: Path) -> None:
    lodge(instance, 7, files)
    changed = drill_record()
    changed["run"]["status"] = "completed after review"
    other = render(changed, artefacts, tmp_path / "changed")
    with pytest.raises(SmkiError) as refused:
        lodge(instance, 7, other)
    assert refused.value.code == report.LODGED_OTHERWISE and "drill-7-html version 1" in refused.value.message
    store = DocumentStore(instance.database)
    assert [len(store.versions(name, reader_roles={"sec_panel"})) for name in NAMES] == [1, 1, 1]

    replaced = lodge(instance, 7, other, replace=True)
    assert replaced.lodged and (replaced.html.version, replaced.pdf.version, replaced.json.version) == (2, 2, 2)
    assert store.content("drill-7-html", reader_roles={"sec_panel"})[1] == other.html.read_bytes()
    assert store.content("drill-7-html", 1, reader_roles={"sec_panel"})[1] == files.html.read_bytes()  # kept


def test_files_that_are_not_the_runs_report_are_refused_before_anything_is_lodged(
        instance: Instance, files: ReportFiles, artefacts: Path, tmp_path: Path) -> None:
    with pytest.raises(SmkiError) as wrong_run:
        lodge(instance, 8, files)
    assert wrong_run.value.code == report.NOT_THIS_RUN
    eight = render(drill_record(run_id=8), artefacts, tmp_path / "eight")
    mixed = dataclasses.replace(eight, json=files.json.with_name("drill-8.json"))
    mixed.json.write_bytes(files.json.read_bytes())   # run 7's record under run 8's name
    with pytest.raises(SmkiError) as swapped:
        lodge(instance, 8, mixed)
    assert (swapped.value.code, swapped.value.field) == (report.NOT_THIS_RUN, "json")
    missing = dataclasses.replace(files, pdf=tmp_path / "gone" / "drill-7.pdf")
    with pytest.raises(SmkiError) as absent:
        lodge(instance, 7, missing)
    assert (absent.value.code, absent.value.field) == (report.NOT_THIS_RUN, "pdf")
    assert not [d for d in DocumentStore(instance.database).latest(reader_roles={"smki_pma"})
                if d.name.startswith("drill-")]


def test_a_report_larger_than_the_repository_takes_is_refused_whole(
        instance: Instance, files: ReportFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_DOCUMENT_BYTES", files.pdf.stat().st_size - 1)
    with pytest.raises(SmkiError) as refused:
        lodge(instance, 7, files)
    assert (refused.value.code, refused.value.field) == (report.TOO_LARGE, "pdf")
    assert not [d for d in DocumentStore(instance.database).latest(reader_roles={"smki_pma"})
                if d.name.startswith("drill-")]
