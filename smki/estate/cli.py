"""``smki estate``: create the simulated device estate, resume an interrupted run, look at a device, count.

    smki estate test-credentials      (after `smki demo`: the demo Parties' test keys and certificates)
    smki estate create --devices 20000 [--types ESME=5,GSME=4,CHF=1] [--workers 2]
    smki estate resume [RUN]
    smki estate show 00DB5A0000000001
    smki estate status
    smki estate worker [--workers N]
    smki estate send --mode recovery --cells supplier,networkOperator [--device ID ...]

``create`` and ``resume`` start ``--workers`` worker processes on this machine (0: build in this process) and
show a progress bar with the rate and the time left; ``smki estate worker`` processes started on other
machines sharing the database and the queue take chunks of the same run. Ctrl-C stops this machine's workers;
every chunk committed stays, and ``smki estate resume`` carries on from there.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from smki.core.errors import SmkiError
from smki.estate import views
from smki.estate.jobs import EstateJobs
from smki.estate.service import STATE_RANK, RunProgress
from smki.instance import Instance

POLL_SECONDS = 0.5
WORKERS_GONE = "ES:WRK1"


def _fail(error: SmkiError) -> NoReturn:
    click.echo(f"error {error.code}: {error.message}", err=True)
    sys.exit(2)


@click.group("estate")
def estate() -> None:
    """The simulated device estate: GBCS devices with keys, Device Certificates and trust-anchor cells."""


@estate.command("create")
@click.option("--devices", "device_count", type=click.IntRange(min=1), required=True, help="How many devices.")
@click.option("--types", default=None, help="The mix, e.g. ESME=5,GSME=4,CHF=1 or ESME,CHF (equal shares); "
              "default: the weights in policies/estate.yaml.")
@click.option("--workers", type=click.IntRange(min=0), default=os.cpu_count() or 1, show_default="one per core",
              help="Worker processes to start on this machine; 0 builds in this process.")
@click.option("--chunk-size", type=click.IntRange(min=1, max=50_000), default=None,
              help="Devices per job (default: policies/estate.yaml chunk_size).")
@click.option("--queue", default=None, help="Queue URL (default: SMKI_QUEUE_URL, or derived from the database).")
def create(device_count: int, types: str | None, workers: int, chunk_size: int | None, queue: str | None) -> None:
    """Create DEVICES devices: key pairs, Device Certificates issued and lodged, cells loaded at installation."""
    instance = Instance.from_env()
    jobs = EstateJobs.build(instance, queue)
    try:
        run_id = jobs.service.create_run(device_count, types=types, chunk_size=chunk_size,
                                         requested_by=f"smki estate create (uid {os.getuid()})")
    except SmkiError as error:
        _fail(error)
    click.echo(f"estate run {run_id}: {device_count} devices", err=True)
    _execute(jobs, run_id, workers, queue)


@estate.command("resume")
@click.argument("run_id", type=int, required=False)
@click.option("--workers", type=click.IntRange(min=0), default=os.cpu_count() or 1, show_default="one per core")
@click.option("--queue", default=None)
def resume(run_id: int | None, workers: int, queue: str | None) -> None:
    """Carry on with an interrupted run (default: the newest unfinished one), failed chunks included."""
    instance = Instance.from_env()
    jobs = EstateJobs.build(instance, queue)
    try:
        run_id = jobs.service.resume(run_id)
    except SmkiError as error:
        _fail(error)
    _execute(jobs, run_id, workers, queue)


def _execute(jobs: EstateJobs, run_id: int, workers: int, queue: str | None) -> None:
    service = jobs.service
    console = Console(stderr=True)
    started: list[subprocess.Popen[bytes]] = []
    log = jobs.instance.settings.instance_dir / "estate-workers.log"
    if workers:
        command = [sys.executable, "-m", "smki.estate.cli", "worker", "--workers", "1"]
        if queue:
            command += ["--queue", queue]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            for _ in range(workers):
                started.append(subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                                                stderr=handle))
    progress_columns = (TextColumn("[bold]run {task.fields[run]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("devices"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn())
    state = service.progress(run_id)
    start, start_done = time.monotonic(), state.devices_done
    interrupted = False
    try:
        with Progress(*progress_columns, console=console, transient=False) as bar:
            task = bar.add_task("estate", total=state.device_count, completed=state.devices_done, run=run_id,
                                rate="")
            while not _settled(state):
                if workers:
                    time.sleep(POLL_SECONDS)
                    if all(process.poll() is not None for process in started):
                        _fail(SmkiError(WORKERS_GONE, f"the {workers} workers this command started have all "
                                        f"stopped; their log is {log}. `smki estate resume {run_id}` carries on."))
                elif not jobs.run_pending(limit=1):
                    time.sleep(POLL_SECONDS)   # a retry scheduled for a moment later, or workers elsewhere
                state = service.progress(run_id)
                elapsed = time.monotonic() - start
                rate = (state.devices_done - start_done) / elapsed if elapsed > 0 else 0.0
                bar.update(task, completed=state.devices_done, rate=f"{rate:,.0f}/s")
    except KeyboardInterrupt:
        interrupted = True
    try:
        _stop(started)
    except KeyboardInterrupt:   # a second Ctrl-C: stop now; the chunks in hand wait for their leases
        _stop(started, now=True)
    if interrupted:
        state = service.progress(run_id)
        click.echo(f"interrupted: {state.devices_done} of {state.device_count} devices built; "
                   f"`smki estate resume {run_id}` carries on", err=True)
        sys.exit(130)
    _report(state)


def _settled(state: RunProgress) -> bool:
    return state.chunks_done + state.chunks_failed >= state.chunk_count


def _stop(started: list[subprocess.Popen[bytes]], *, now: bool = False) -> None:
    for process in started:
        if process.poll() is None:
            # SIGINT: Huey's graceful stop, the chunk in hand is finished and committed (SIGTERM would abandon
            # it under its lease, and it would wait for the lease to run out).
            os.killpg(process.pid, signal.SIGKILL if now else signal.SIGINT)
    for process in started:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _report(state: RunProgress) -> None:
    if state.chunks_failed:
        for chunk, code, text in state.failures:
            click.echo(f"chunk {chunk}: {code} {text}", err=True)
        click.echo(f"run {state.run_id}: {state.devices_done} of {state.device_count} devices built; "
                   f"{state.chunks_failed} chunks failed. Fix the cause, then `smki estate resume "
                   f"{state.run_id}`.", err=True)
        sys.exit(1)
    click.echo(f"run {state.run_id}: {state.devices_done} devices built", err=True)


@estate.command("show")
@click.argument("device")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def show(device: str, as_json: bool) -> None:
    """One device: type, owners, faults, counters, Device Certificates, and every trust-anchor cell."""
    instance = Instance.from_env()
    try:
        view = views.show(instance, device)
    except SmkiError as error:
        _fail(error)
    if as_json:
        click.echo(json.dumps(view.as_dict(), indent=2))
        return
    console = Console()
    console.print(f"[bold]{view.device_id}[/bold] {view.device_type} (run {view.run_id})")
    console.print(f"supplier: {view.supplier or '-'}   network operator: {view.network_operator or '-'}")
    console.print(f"faults: {', '.join(view.faults) or 'none'}")
    console.print("counters: " + ", ".join(f"{role} {value}" for role, value in view.counters.items()))
    for usage, (serial, status) in view.certificates.items():
        console.print(f"{usage} certificate: {serial} (Repository: {status})")
    table = Table("role", "key usage", "cell usage", "state", "serial", "subject", "SKI")
    for cell in view.cells:
        table.add_row(cell.role, cell.key_usage, cell.cell_usage, cell.state, cell.serial or "-",
                      cell.subject_eui or "-", cell.subject_key_identifier or "-")
    console.print(table)


@estate.command("status")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def status(as_json: bool) -> None:
    """Runs, devices by type and by anchor state (their worst cell's), injected faults."""
    instance = Instance.from_env()
    counted = views.counts(instance)
    if as_json:
        click.echo(json.dumps({
            "runs": [{"run": r, "status": s, "built": b, "devices": d} for r, s, b, d in counted.runs],
            "devices": counted.devices_by_type,
            "devices_by_anchor_state": [{"type": t, "state": s, "devices": n}
                                        for (t, s), n in sorted(counted.devices_by_anchor_state.items())],
            "faults": [{"type": t, "fault": f, "devices": n} for (t, f), n in sorted(counted.faults_by_type.items())],
        }, indent=2))
        return
    console = Console()
    runs = Table("run", "status", "built", "devices", title="runs")
    for run, run_status, built, devices in counted.runs:
        runs.add_row(str(run), run_status, str(built), str(devices))
    console.print(runs)
    states = sorted({s for _t, s in counted.devices_by_anchor_state}, key=STATE_RANK.__getitem__)
    by_type = Table("type", "devices", *[f"anchors {s}" for s in states], title="devices by anchor state")
    for device_type, number in sorted(counted.devices_by_type.items()):
        by_type.add_row(device_type, str(number),
                        *[str(counted.devices_by_anchor_state.get((device_type, s), 0)) for s in states])
    console.print(by_type)
    if counted.faults_by_type:
        faults = Table("type", "fault", "devices", title="injected faults")
        for (device_type, fault), number in sorted(counted.faults_by_type.items()):
            faults.add_row(device_type, fault, str(number))
        console.print(faults)


@estate.command("test-credentials")
def test_credentials() -> None:
    """TEST MATERIAL: key pairs and Organisation Certificates for the demo and drill Parties (policies/estate.yaml
    test_parties) that the estate's cells need, so the sandbox can sign commands as them. Never a real Party's."""
    from smki.estate.testkeys import TestKeyStore

    instance = Instance.from_env()
    try:
        made = TestKeyStore(instance).issue_test_credentials()
    except SmkiError as error:
        _fail(error)
    for item in made:
        click.echo(f"{item.eui} role {item.role_ou} {item.usage} {item.cell_usage}: issued, lodged, key held "
                   "(test material)")
    click.echo(f"{len(made)} test credentials made", err=True)


@estate.command("send")
@click.option("--mode", type=click.Choice(["recovery", "supplier"]), required=True,
              help="recovery: mode 8, signed with the DCC's Recovery key; supplier: mode 2, signed with the "
              "supplier's TEST key and MAC-wrapped with the ACB's (demo and drill Parties only).")
@click.option("--cells", default="supplier", show_default=True,
              help="Comma-separated roles whose cells to replace (supplier, networkOperator, accessControlBroker, "
              "transitionalCoS, wanProvider, recovery).")
@click.option("--device", "devices", multiple=True, help="A Device ID; repeat for more. Default: every device.")
@click.option("--chunk-size", type=click.IntRange(min=1, max=50_000), default=500, show_default=True,
              help="Devices per transaction.")
@click.option("--share", default=None, metavar="K/N",
              help="Only the devices numbered K modulo N: run N senders at once (K = 0 .. N-1), on any machines.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def send(mode: str, cells: str, devices: tuple[str, ...], chunk_size: int, share: str | None,
         as_json: bool) -> None:
    """Build, sign (and MAC-wrap) a CS02b command per device, deliver it to the simulator, verify every answer.
    Each device places in its cells the newest issued Organisation Certificate of the cell's holder."""
    from smki.estate.sending import CommandSender, parse_share

    instance = Instance.from_env()
    roles = [r.strip() for r in cells.split(",") if r.strip()]
    try:
        part = None if share is None else parse_share(share)
        with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      disable=as_json) as bar:
            task = bar.add_task("send", total=len(devices) or None)
            report = CommandSender(instance).send(mode, roles, list(devices) or None, chunk_size=chunk_size,
                                                  progress=lambda done: bar.advance(task, done), share=part)
    except SmkiError as error:
        _fail(error)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"{report.devices} devices, {report.answered} answered, {report.verified} responses verified")
        for status_name, number in sorted(report.statuses.items()):
            click.echo(f"  {status_name}: {number} cells")
        for code, number in sorted(report.refused.items()):
            click.echo(f"  refused {code}: {number} devices")
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
    if report.verified != report.devices:
        sys.exit(1)


@estate.command("worker")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes in this consumer.")
@click.option("--queue", default=None, help="Queue URL (default: SMKI_QUEUE_URL, or derived from the database).")
def worker(workers: int, queue: str | None) -> None:
    """Build queued estate chunks until stopped (SIGTERM or Ctrl-C finish the current chunk)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    jobs = EstateJobs.build(Instance.from_env(), queue)
    jobs.create_consumer(workers).run()


if __name__ == "__main__":
    estate()
