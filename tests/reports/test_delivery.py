"""On time without anyone remembering: the scheduled job produces each month's report once its production
day comes, exactly once even with two schedulers, retries a failure, lodges the published edition in the
Repository for everyone and the full edition for the Panel and the PMA alone, and records when it was
produced and lodged and whether it was late."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from repository.documents import DocumentStore
from repository.errors import RepositoryError
from smki.core.errors import SmkiError
from smki.ra.service import RegistrationAuthority
from smki.reports import delivery, render
from smki.reports.delivery import VarianceReporting
from tests.ra.conftest import Population
from tests.reports.conftest import Clock, Ledger, at

PREFIX = "csr-forecast-variance-2026-10"


@pytest.fixture
def seeded(ra: RegistrationAuthority, population: Population, ledger: Ledger) -> Population:
    ledger.batch(population.supplier_a, at("2026-10-05T10:00:00"), 120)
    ledger.adhoc(population.network, at("2026-10-06T10:00:00"), 3)
    return population


def test_scheduled_job_produces_the_report_on_its_production_day_and_only_once(
        ra: RegistrationAuthority, seeded: Population) -> None:
    clock = Clock(at("2026-11-10T05:59:00"))   # October's report is due Friday 13 November; produced Wednesday 11th
    reporting = VarianceReporting(ra.instance, clock)
    assert reporting.production_time("2026-10") == at("2026-11-11T06:00:00")
    assert reporting.run_due() is None
    clock.now = at("2026-11-11T06:00:00")
    delivered = reporting.run_due()
    assert delivered is not None and delivered.status == "delivered" and delivered.late is False
    assert delivered.due_date.isoformat() == "2026-11-13" and delivered.lodged_at == clock.now
    clock.now = at("2026-11-11T06:30:00")
    assert reporting.run_due() is None
    [run] = reporting.history()
    assert (run.period, run.attempts, run.trigger, run.late) == ("2026-10", 1, "schedule", False)


def test_two_schedulers_produce_it_exactly_once(ra: RegistrationAuthority, seeded: Population) -> None:
    clock = Clock(at("2026-11-11T07:00:00"))
    results: list[object] = []
    start = threading.Barrier(4)

    def scheduler() -> None:
        reporting = VarianceReporting(ra.instance, clock)
        start.wait()
        results.append(reporting.run_due())

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([r for r in results if r is not None]) == 1
    store = DocumentStore(ra.database)
    for fmt in ("csv", "html", "pdf"):
        assert [v.version for v in store.versions(f"{PREFIX}-{fmt}")] == [1]
    [run] = VarianceReporting(ra.instance, clock).history()
    assert run.attempts == 1


def test_a_failure_is_recorded_and_retried(ra: RegistrationAuthority, seeded: Population,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(at("2026-11-11T07:00:00"))
    reporting = VarianceReporting(ra.instance, clock)
    real = render.to_pdf
    monkeypatch.setattr(render, "to_pdf", lambda report: (_ for _ in ()).throw(OSError("disk full")))
    assert reporting.run_due() is None
    [run] = reporting.history()
    assert run.status == "failed" and "disk full" in (run.error or "") and run.attempts == 1
    assert DocumentStore(ra.database).versions(f"{PREFIX}-csv") == []   # nothing lodged by the failed attempt
    monkeypatch.setattr(render, "to_pdf", real)
    clock.now = at("2026-11-11T07:10:00")
    assert reporting.run_due() is None   # waits retry_after_minutes (15)
    clock.now = at("2026-11-11T07:16:00")
    delivered = reporting.run_due()
    assert delivered is not None and delivered.attempts == 2 and delivered.error is None


def test_a_late_report_is_recorded_as_late_in_working_days(ra: RegistrationAuthority, seeded: Population) -> None:
    clock = Clock(at("2026-11-16T09:00:00"))   # Monday after the Friday due date
    delivered = VarianceReporting(ra.instance, clock).produce("2026-10")
    assert delivered.late is True and delivered.working_days_late == 1 and delivered.trigger == "manual"
    with pytest.raises(SmkiError) as again:
        VarianceReporting(ra.instance, clock).produce("2026-10")
    assert again.value.code == delivery.ALREADY_DELIVERED


def test_published_edition_is_lodged_for_all_and_the_full_edition_for_panel_and_pma_alone(
        ra: RegistrationAuthority, seeded: Population) -> None:
    clock = Clock(at("2026-11-11T07:00:00"))
    reporting = VarianceReporting(ra.instance, clock)
    delivered = reporting.produce("2026-10")
    assert set(delivered.documents) == {f"{PREFIX}-{fmt}" for fmt in ("csv", "html", "pdf")} | {
        f"{PREFIX}-full-{fmt}" for fmt in ("csv", "html", "pdf")}
    store = DocumentStore(ra.database)
    lodged = {v.name: v for v in store.latest() if v.name.startswith(PREFIX)}
    assert set(lodged) == {f"{PREFIX}-{fmt}" for fmt in ("csv", "html", "pdf")}   # no sign of the full edition
    assert {v.media_type for v in lodged.values()} == {"text/csv", "text/html", "application/pdf"}
    _, csv_published = store.content(f"{PREFIX}-csv")
    assert b"Alpha Energy Supply Ltd" not in csv_published   # its 120 CSRs with no forecast: redacted
    assert b"Subscriber withheld (1)" in csv_published
    assert store.content(f"{PREFIX}-pdf")[1].startswith(b"%PDF")
    assert b"<svg" in store.content(f"{PREFIX}-html")[1]

    with pytest.raises(RepositoryError) as hidden:   # the same answer as for a document never lodged
        store.content(f"{PREFIX}-full-csv")
    assert hidden.value.code == "RP:DOC7" and hidden.value.status == 404
    for role in ("sec_panel", "smki_pma"):
        full = {v.name: v for v in store.latest(reader_roles={role}) if v.name.startswith(f"{PREFIX}-full")}
        assert {v.audience for v in full.values()} == {frozenset({"sec_panel", "smki_pma"})}
        version, csv_full = store.content(f"{PREFIX}-full-csv", reader_roles={role})
        assert b"Alpha Energy Supply Ltd" in csv_full and version.file_name == "csr-forecast-variance-2026-10-full.csv"
        assert csv_full == reporting.edition("2026-10", "full", "csv")   # the run keeps what was lodged
        assert store.content(f"{PREFIX}-full-pdf", reader_roles={role})[1].startswith(b"%PDF")


def test_full_readers_without_a_repository_role_fail_the_run_before_anything_is_lodged(
        ra: RegistrationAuthority, seeded: Population) -> None:
    clock = Clock(at("2026-11-11T07:00:00"))
    reporting = VarianceReporting(ra.instance, clock)
    for readers in (("pma", "ra_operator"), ()):
        publication = reporting.policy.publication.model_copy(update={"full_readers": readers})
        reporting.policy = reporting.policy.model_copy(update={"publication": publication})
        with pytest.raises(SmkiError) as refused:
            reporting.produce("2026-10")
        assert refused.value.code == delivery.NO_REPOSITORY_ROLE
        assert DocumentStore(ra.database).versions(f"{PREFIX}-csv") == []
        assert reporting.history()[0].status == "failed"


def test_cli_runs_the_report_by_hand_and_shows_the_history(
        ra: RegistrationAuthority, seeded: Population, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from smki.reports.cli import report

    settings = ra.instance.settings
    monkeypatch.setenv("SMKI_INSTANCE", str(settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    produced = runner.invoke(report, ["variance", "--month", "2026-10"])
    assert produced.exit_code == 0, produced.output
    assert "Repository document csr-forecast-variance-2026-10-pdf" in produced.output
    history = runner.invoke(report, ["history"])
    assert "2026-10" in history.output and "2026-11-13" in history.output and "delivered" in history.output
    again = runner.invoke(report, ["variance", "--month", "2026-10"])
    assert again.exit_code == 2 and delivery.ALREADY_DELIVERED in again.output
    bad = runner.invoke(report, ["variance", "--month", "October"])
    assert bad.exit_code == 2 and "FM:VAR01" in bad.output
    out = tmp_path / "report.pdf"
    assert runner.invoke(report, ["show", "--month", "2026-10", "--format", "pdf", "--out", str(out)]).exit_code == 0
    assert out.read_bytes().startswith(b"%PDF")


def test_cli_says_when_a_month_is_due(ra: RegistrationAuthority, monkeypatch: pytest.MonkeyPatch) -> None:
    from smki.reports.cli import report

    monkeypatch.setenv("SMKI_INSTANCE", str(ra.instance.settings.instance_dir))
    monkeypatch.setenv("SMKI_DATABASE_URL", ra.instance.settings.database_url)
    said = CliRunner().invoke(report, ["due", "--month", "2026-12"])
    assert said.exit_code == 0 and "due 2027-01-15" in said.output and "2027-01-13 06:00 UTC" in said.output
    assert CliRunner().invoke(report, ["due", "--month", "2026-1"]).exit_code == 2


def test_a_month_is_never_skipped_when_no_scheduler_ran_in_its_window(
        ra: RegistrationAuthority, seeded: Population) -> None:
    """September was delivered; the sandbox was down from October to mid-December: at the next wake the
    schedule produces October and November, oldest first, each recorded late; a new sandbox owes no months
    before its first report."""
    clock = Clock(at("2026-10-14T09:00:00"))
    reporting = VarianceReporting(ra.instance, clock)
    assert reporting.months_due() == ["2026-09"]  # before any report: the latest ended month alone
    assert reporting.run_due() is not None

    clock.now = at("2026-12-21T09:00:00")
    assert reporting.months_due() == ["2026-09", "2026-10", "2026-11"]
    assert reporting.run_due() is not None
    history = {run.period: run for run in reporting.history()}
    assert set(history) == {"2026-09", "2026-10", "2026-11"}
    assert history["2026-10"].late is True and history["2026-10"].status == "delivered"
    assert history["2026-11"].late is True  # due Monday 14 December
    assert reporting.run_due() is None  # nothing owed any more
