"""``smki drill``: run a recovery scenario on a drill world, watch it, pause and resume it, read its record.

    smki drill scenarios
    smki drill run org_key_method3 [--devices 12] [--seed 7] [--types ESME=1,CHF=1] [--faults offline=1]
    smki drill status RUN | pause RUN | resume RUN | list | record RUN | report RUN [--out DIR]
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.table import Table

from smki.core.errors import SmkiError
from smki.core.policyfiles.recovery import load_scenario, scenario_names
from smki.drills.record import artefacts_dir, record
from smki.drills.runner import Drills, Progress
from smki.instance import Instance

POLL_SECONDS = 0.5


def _fail(error: SmkiError) -> NoReturn:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


def _show(progress: Progress, console: Console) -> None:
    devices = f"{progress.devices_done}/{progress.devices_total} devices" if progress.devices_total else "-"
    rate = f", {progress.rate:.1f}/s" if progress.rate else ""
    left = f", {progress.seconds_left:.0f}s left" if progress.seconds_left is not None and progress.rate else ""
    console.print(f"drill {progress.run_id} {progress.status}, {progress.phase or '-'} / {progress.step or '-'}: "
                  f"{progress.steps_done}/{progress.steps_total} steps, {devices}{rate}{left}"
                  + (f"  error {progress.error}" if progress.error else ""), markup=False)


def _execute(drills: Drills, run_id: int) -> None:
    """Run the drill in a thread of this process and show its progress live (phase, step, devices done, rate,
    time left); Ctrl-C asks it to pause before its next step."""
    console = Console(stderr=True)
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["status"] = drills.execute(run_id, on_step=lambda p: _show(p, console))
        except SmkiError as error:
            outcome["error"] = error
        except Exception as error:   # recorded on the run; shown below
            outcome["error"] = error

    thread = threading.Thread(target=work, name=f"drill-{run_id}", daemon=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("devices"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Bar(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        thread.start()
        while thread.is_alive():
            try:
                thread.join(POLL_SECONDS)
                progress = drills.progress(run_id)
                bar.update(task, description=f"{progress.phase or '-'} / {progress.step or '-'}",
                           completed=progress.devices_done, total=progress.devices_total or None)
            except KeyboardInterrupt:
                drills.pause(run_id)
                console.print(f"drill {run_id}: pausing before the next step (smki drill resume {run_id})",
                              markup=False)
    error = outcome.get("error")
    if isinstance(error, SmkiError):
        _fail(error)
    _show(drills.progress(run_id), console)
    if error is not None or outcome.get("status") == "failed":
        sys.exit(1)


@click.group("drill")
def drill() -> None:
    """Recovery drills (SEC L10, Appendix L): a compromise scenario run for real on a drill world."""


@drill.command("scenarios")
def scenarios() -> None:
    """The scenario files in policies/recovery/."""
    instance = Instance.from_env()
    for name in scenario_names(instance.settings.policies_dir):
        try:
            click.echo(f"{name:<22} {load_scenario(instance.settings.policies_dir, name).title}")
        except SmkiError as error:
            click.echo(f"{name:<22} error {error.code}: {error.message}")


@drill.command("run")
@click.argument("scenario")
@click.option("--devices", type=click.IntRange(min=1), default=None, help="Devices in the estate (default: the "
              "scenario file's).")
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), default=None,
              help="Repeat a drill: the same seed gives the same devices, faults and custodians' passphrases.")
@click.option("--types", default=None, help="The estate's mix, e.g. ESME=1,GSME=1,CHF=1.")
@click.option("--faults", "faults_text", default=None,
              help="Faults injected into affected devices, e.g. offline=1,busy=1,tampered_cells=1,command_lost=1 "
              "(default: the scenario file's).")
def run(scenario: str, devices: int | None, seed: int | None, types: str | None, faults_text: str | None) -> None:
    """Create a drill world and run SCENARIO on it, step by step."""
    host = Instance.from_env()
    drills = Drills(host)
    try:
        run_id = drills.create(scenario, devices=devices, seed=seed, types=types, faults_text=faults_text,
                               started_by=f"smki drill run (uid {os.getuid()})")
    except SmkiError as error:
        _fail(error)
    click.echo(f"drill {run_id}: {scenario}", err=True)
    _execute(drills, run_id)


@drill.command("resume")
@click.argument("run_id", type=int)
def resume(run_id: int) -> None:
    """Carry on with a paused, failed or crashed run from its first step not done."""
    _execute(Drills(Instance.from_env()), run_id)


@drill.command("pause")
@click.argument("run_id", type=int)
def pause(run_id: int) -> None:
    """Ask a running drill to stop before its next step."""
    try:
        status = Drills(Instance.from_env()).pause(run_id)
    except SmkiError as error:
        _fail(error)
    click.echo(f"drill {run_id}: {'pause requested' if status == 'running' else status}")


@drill.command("status")
@click.argument("run_id", type=int)
def status(run_id: int) -> None:
    """A run's progress and steps."""
    drills = Drills(Instance.from_env())
    try:
        progress = drills.progress(run_id)
        steps = drills.steps(run_id)
    except SmkiError as error:
        _fail(error)
    console = Console()
    _show(progress, console)
    table = Table("step", "phase", "actor", "status", "target min", "A/V")
    for step in steps:
        table.add_row(step["id"], step["phase"], step["actor"] or step["actor_role"], step["status"],
                      f"{step['target_minutes']:g}" if step["target_minutes"] else "", step["confidence"])
    console.print(table)


@drill.command("list")
def list_runs() -> None:
    """Every drill run of this instance, newest first."""
    table = Table("run", "scenario", "status", "seed", "devices", "created", "by")
    for item in Drills(Instance.from_env()).list():
        table.add_row(str(item["id"]), item["scenario"], item["status"], str(item["seed"]), str(item["devices"]),
                      item["created_at"][:19], item["started_by"])
    Console().print(table)


@drill.command("record")
@click.argument("run_id", type=int)
def record_command(run_id: int) -> None:
    """The run's drill record, as JSON."""
    try:
        click.echo(json.dumps(record(Instance.from_env(), run_id), indent=2))
    except SmkiError as error:
        _fail(error)


@drill.command("report")
@click.argument("run_id", type=int)
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Where to write the report (default: <world>/report).")
def report(run_id: int, out: str | None) -> None:
    """Render the run's report (HTML, PDF, JSON, evidence zip) and lodge it in the Repository for the PMA."""
    from pathlib import Path

    from smki.drills import report as reporting

    host = Instance.from_env()
    try:
        data = record(host, run_id)
        artefacts = artefacts_dir(host, run_id)
        files = reporting.render(data, artefacts, Path(out) if out else artefacts.parent / "report")
        lodged = reporting.lodge(host, run_id, files)
    except SmkiError as error:
        _fail(error)
    for label, path in (("html", files.html), ("pdf", files.pdf), ("json", files.json),
                        ("evidence", files.evidence_zip)):
        click.echo(f"{label:<9} {path}")
    click.echo(f"lodged in the Repository as {', '.join(lodged.names)} (readable by the SMKI PMA and the Panel)")
