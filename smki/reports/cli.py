"""``smki report``: produce the CSR Forecast Variance Report by hand, see the history of deliveries, read
the published edition, and run the schedule in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from smki.core.errors import SmkiError
from smki.instance import Instance
from smki.reports.delivery import VarianceReporting


def _reporting() -> VarianceReporting:
    from smki.schema import migrate

    instance = Instance.from_env()
    migrate(instance.database)
    return VarianceReporting(instance)


def _fail(error: SmkiError) -> None:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


@click.group("report")
def report() -> None:
    """Reports: the monthly CSR Forecast Variance Report (SEC L8.9)."""


@report.command("variance")
@click.option("--month", required=True, metavar="YYYY-MM", help="The calendar month to report on.")
def variance_command(month: str) -> None:
    """Produce, lodge and record the report for MONTH now (once: a delivered report is not produced again)."""
    try:
        delivery = _reporting().produce(month, trigger="manual")
    except SmkiError as error:
        _fail(error)
        return
    timing = f"LATE by {delivery.working_days_late} Working Day(s)" if delivery.late else "on time"
    click.echo(f"CSR Forecast Variance Report {month}: lodged {delivery.lodged_at:%Y-%m-%d %H:%M} UTC, due "
               f"{delivery.due_date}, {timing}")
    for name in delivery.documents:
        click.echo(f"  Repository document {name}")


@report.command("history")
def history() -> None:
    """Every report: its due date, when it was delivered, and whether it was late."""
    reporting = _reporting()
    click.echo(f"{'month':<8} {'due':<10} {'status':<10} {'delivered (UTC)':<17} {'late':<10} attempts")
    for run in reporting.history():
        delivered = f"{run.lodged_at:%Y-%m-%d %H:%M}" if run.lodged_at else "-"
        late = "-" if run.late is None else (f"yes, {run.working_days_late} WD" if run.late else "no")
        click.echo(f"{run.period:<8} {run.due_date!s:<10} {run.status:<10} {delivered:<17} {late:<10} {run.attempts}"
                   + (f"  {run.error}" if run.error and run.status != "delivered" else ""))


@report.command("due")
@click.option("--month", required=True, metavar="YYYY-MM")
def due(month: str) -> None:
    """When MONTH's report is due, and when the scheduled job produces it."""
    from smki.core.months import MONTH
    from smki.reports.variance import BAD_MONTH

    if not MONTH.match(month):
        _fail(SmkiError(BAD_MONTH, f"{month!r} is not a month; give it as YYYY-MM, for example 2026-11."))
    reporting = _reporting()
    produced = reporting.production_time(month)
    click.echo(f"{month}: due {reporting.due_date(month)}; produced from {produced:%Y-%m-%d %H:%M} UTC")


@report.command("show")
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--format", "fmt", type=click.Choice(["csv", "html", "pdf"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output.")
def show(month: str, fmt: str, out: Path | None) -> None:
    """The published edition of MONTH's report (the Panel and the PMA read the full one in the Repository)."""
    try:
        content = _reporting().edition(month, "published", fmt)
    except SmkiError as error:
        _fail(error)
        return
    if out:
        out.write_bytes(content)
    else:
        click.echo(content, nl=False)


@report.command("demand")
@click.option("--month", metavar="YYYY-MM", help="The calendar month to report on.")
@click.option("--day", metavar="YYYY-MM-DD", help="One day to report on.")
@click.option("--format", "fmt", type=click.Choice(["csv", "html"]), default="csv")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output.")
def demand_command(month: str | None, day: str | None, fmt: str, out: Path | None) -> None:
    """The Repository Demand Exceptions report (Appendix P): each Repository user's requests per day and time
    band against its forecast; exceptions at or above 120% of it, and requests with no forecast."""
    from smki.reports import demand, demand_render
    from smki.schema import migrate

    if (month is None) == (day is None):
        _fail(SmkiError(demand.BAD_PERIOD, "give exactly one of --month YYYY-MM or --day YYYY-MM-DD."))
        return
    instance = Instance.from_env()
    migrate(instance.database)
    try:
        report_ = demand.build(instance.database, instance.policies.variance, str(month or day))
    except SmkiError as error:
        _fail(error)
        return
    content = demand_render.render(report_, fmt)
    if out:
        out.write_bytes(content)
        click.echo(f"Repository Demand Exceptions Report {report_.period}: {len(report_.exceptions)} exception(s) "
                   f"in {len(report_.lines)} line(s); written to {out}")
    else:
        click.echo(content.decode(), nl=False)


@report.command("schedule")
def schedule() -> None:
    """Run the report schedule in the foreground: each month's report is produced without anyone asking."""
    import signal
    import time

    from smki.reports.schedule import ReportScheduler

    def stop(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    _reporting()  # migrates
    scheduler = ReportScheduler(Instance.from_env())
    scheduler.start()
    click.echo("report schedule running; Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        scheduler.shutdown()
