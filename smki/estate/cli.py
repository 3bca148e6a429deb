"""``smki estate``: create the simulated device estate, resume an interrupted run, look at a device, count.

    smki estate test-credentials      (after `smki demo`: the demo Parties' test keys and certificates)
    smki estate create --devices 20000 [--types ESME=5,GSME=4,CHF=1] [--workers 2]
    smki estate resume [RUN]
    smki estate show 00DB5A0000000001
    smki estate status
    smki estate worker [--workers N]
    smki estate send --mode recovery --cells supplier,networkOperator [--device ID ...] [--workers N]
    smki estate send --mode recovery --cells supplier --ceremony-decision 4 --custodian-share FILE ...
    smki estate send --resume RUN

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
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography.hazmat.primitives.serialization import Encoding
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
@click.option("--mode", type=click.Choice(["recovery", "supplier", "networkOperator", "contingency"]), default=None,
              help="recovery: mode 8, the DCC's Recovery key; contingency: mode 9, the Contingency key with the "
              "plaintext symmetric key (placing --root-certificate); supplier / networkOperator: modes 2 / 3, the "
              "holder's TEST key, MAC-wrapped with the ACB's (demo and drill Parties only).")
@click.option("--cells", default="supplier", show_default=True,
              help="Comma-separated roles whose cells to replace (supplier, networkOperator, accessControlBroker, "
              "transitionalCoS, wanProvider, recovery); for contingency, the roles besides the root (may be empty).")
@click.option("--device", "devices", multiple=True, help="A Device ID; repeat for more. Default: every device.")
@click.option("--place-acb", "acb_roles", multiple=True, metavar="ROLE",
              help="Method 2: place the DCC ACB's certificates in this role's cells (e.g. supplier), by the Recovery "
              "key.")
@click.option("--root-certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="contingency: the new Root OCA certificate (PEM or DER) to place in the root cell.")
@click.option("--chunk-size", type=click.IntRange(min=1, max=50_000), default=500, show_default=True,
              help="Devices per chunk (one transaction, one job).")
@click.option("--share", default=None, metavar="K/N",
              help="Only the devices numbered K modulo N: run N senders at once (K = 0 .. N-1), on any machines.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes to start on this machine for the run's jobs (0: send in this process). A run "
              "under a ceremony is always sent in this process.")
@click.option("--queue", default=None, help="Queue URL (default: SMKI_QUEUE_URL, or derived from the database).")
@click.option("--resume", "resume_run", type=int, default=None, metavar="RUN",
              help="Carry on with send run RUN: its chunks not done; no device gets a second command.")
@click.option("--runs", "list_runs", is_flag=True, help="List the newest send runs and stop.")
@click.option("--ceremony-decision", type=int, default=None, metavar="N",
              help="Send under a key ceremony: the SMKI PMA's decision N that the Recovery (or Contingency) key may "
              "be used; each --custodian-share's custodian types their passphrase.")
@click.option("--custodian-share", "share_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A Key Custodian's share file (repeat, a quorum).")
@click.option("--officer", default=None, help="Who runs the ceremony (recorded in the audit log).")
@click.option("--outcomes", "outcomes_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every device's outcome to this file (JSON lines).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def send(mode: str | None, cells: str, devices: tuple[str, ...], acb_roles: tuple[str, ...],
         root_certificate: Path | None, chunk_size: int, share: str | None, workers: int, queue: str | None,
         resume_run: int | None, list_runs: bool, ceremony_decision: int | None, share_files: tuple[Path, ...],
         officer: str | None, outcomes_file: Path | None, as_json: bool) -> None:
    """Build, sign (and MAC-wrap) a CS02b command per device, deliver it to the simulator, verify every answer:
    a send run, in chunks, with a progress bar; `--resume RUN` carries on after an interruption."""
    from smki.estate.send_runs import PROCESS, WORKERS
    from smki.estate.sending import CommandSender, parse_share

    instance = Instance.from_env()
    jobs = EstateJobs.build(instance, queue)
    runs = jobs.sends
    if list_runs:
        for state in runs.runs():
            click.echo(f"run {state.run_id}: {state.mode}, {state.status}, {state.devices_done} of "
                       f"{state.device_count} devices, {state.chunks_failed} chunks failed ({state.holder})")
        return
    try:
        if resume_run is not None:
            run_id = resume_run
            order = runs.resume(run_id).order
            holder = runs.progress(run_id).holder
        else:
            if mode is None:
                raise SmkiError("ES:SND1", "--mode is required (or --resume RUN)")
            roles = [r.strip() for r in cells.split(",") if r.strip()]
            placements: dict[str, object] = {role: "acb" for role in acb_roles}
            if root_certificate is not None:
                placements["root"] = _certificate_der(root_certificate)
            order = CommandSender(instance).order(mode, roles, placements or None)
            holder = PROCESS if ceremony_decision is not None or not workers else WORKERS
            if ceremony_decision is None:
                runs.sender.keys(order)   # refused now (ES:SND4: the key is in custody), before any run is made
            elif mode not in ("recovery", "contingency"):
                raise SmkiError("ES:SND1", f"a {mode} command is signed with a Party's key, not under a ceremony")
            run_id = runs.create(order, list(devices) or None, share=None if share is None else parse_share(share),
                                 chunk_size=chunk_size, holder=holder,
                                 requested_by=f"smki estate send (uid {os.getuid()})")
        if not as_json:
            click.echo(f"send run {run_id}: {order.mode_name}", err=True)
        if ceremony_decision is not None:
            _send_under_ceremony(instance, runs, run_id, order, ceremony_decision, share_files, officer, as_json)
        elif holder == WORKERS:
            _follow_send(jobs, run_id, workers, queue, as_json)
        else:
            _send_here(runs, run_id, None, as_json)
    except SmkiError as error:
        _fail(error)
    _send_report(runs, run_id, outcomes_file, as_json)


def _certificate_der(path: Path) -> bytes:
    from cryptography import x509

    raw = path.read_bytes()
    try:
        certificate = x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw \
            else x509.load_der_x509_certificate(raw)
    except ValueError as error:
        raise SmkiError("ES:SND5", f"{path} is not a certificate (PEM or DER): {error}", field="root_certificate") \
            from None
    return certificate.public_bytes(Encoding.DER)


def _send_columns() -> tuple[Any, ...]:
    return (TextColumn("[bold]send run {task.fields[run]}"), BarColumn(), MofNCompleteColumn(), TextColumn("devices"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())


def _send_here(runs: Any, run_id: int, keys: Any, as_json: bool) -> None:
    """The run's chunks in this process (a ceremony's keys in ``keys``), with a progress bar."""
    state = runs.progress(run_id)
    start, done = time.monotonic(), 0
    try:
        with Progress(*_send_columns(), console=Console(stderr=True), disable=as_json) as bar:
            task = bar.add_task("send", total=state.device_count, completed=state.devices_done, run=run_id, rate="")

            def advance(devices: int) -> None:
                nonlocal done
                done += devices
                elapsed = time.monotonic() - start
                bar.update(task, advance=devices, rate=f"{done / elapsed if elapsed > 0 else 0:,.0f}/s")
            runs.run_here(run_id, keys, progress=advance)
    except KeyboardInterrupt:
        state = runs.progress(run_id)
        click.echo(f"interrupted: {state.devices_done} of {state.device_count} devices sent to; `smki estate send "
                   f"--resume {run_id}` carries on (no device gets a second command)", err=True)
        sys.exit(130)


def _send_under_ceremony(instance: Instance, runs: Any, run_id: int, order: Any, decision: int,
                         share_files: tuple[Path, ...], officer: str | None, as_json: bool) -> None:
    """A key ceremony in this process: the custodians present their shares, the key is reconstructed in memory,
    the run's chunks are sent with it here, and the ceremony is closed; the key never leaves this process."""
    import getpass

    from smki.estate.sending import Keys
    from smki.recovery import carrier
    from smki.recovery.ceremony import CeremonySession

    key_name = {"recovery": "recovery", "contingency": "contingency"}.get(order.mode_name)
    if key_name is None:
        raise SmkiError("ES:SND1", f"a {order.mode_name} command is signed with a Party's key, not under a ceremony")
    actor = f"ceremony-officer:{officer or getpass.getuser()}"
    ceremony = CeremonySession.open(instance.database, instance.policies.custody, key_name=key_name,
                                    decision_id=decision, actor=actor)
    click.echo(f"ceremony {ceremony.id} open: {key_name}; quorum {ceremony.quorum}", err=True)
    outcome = "failed"
    try:
        for path in share_files:
            carried = carrier.read(path)
            passphrase = click.prompt(f"custodian {carried.appointment_id}: your passphrase", hide_input=True,
                                      err=True)
            try:
                count = ceremony.present(carried.appointment_id, passphrase, carried.sealed)
                click.echo(f"  custodian {carried.appointment_id}: share accepted ({count} of {ceremony.quorum})",
                           err=True)
            except SmkiError as error:   # recorded; the sitting goes on with the other custodians
                click.echo(f"  custodian {carried.appointment_id}: refused {error.code}: {error.message}", err=True)
        with ceremony.key(actor) as material:
            _send_here(runs, run_id, Keys(material.private_key, material.wrapping_key), as_json)
        outcome = "completed"
    finally:
        ceremony.close(actor, outcome)


def _follow_send(jobs: EstateJobs, run_id: int, workers: int, queue: str | None, as_json: bool) -> None:
    """A ``workers`` run: start ``workers`` worker processes here (0: run the queue's jobs in this process) and
    follow the run's progress until it settles."""
    runs = jobs.sends
    started = _start_workers(jobs, workers, queue)
    state = runs.progress(run_id)
    start, start_done = time.monotonic(), state.devices_done
    interrupted = False
    try:
        with Progress(*_send_columns(), console=Console(stderr=True), disable=as_json) as bar:
            task = bar.add_task("send", total=state.device_count, completed=state.devices_done, run=run_id, rate="")
            while not state.settled:
                if workers:
                    time.sleep(POLL_SECONDS)
                    if all(process.poll() is not None for process in started):
                        raise SmkiError(WORKERS_GONE, f"the {workers} workers this command started have all "
                                        f"stopped; `smki estate send --resume {run_id}` carries on.")
                elif not jobs.run_pending(limit=1):
                    time.sleep(POLL_SECONDS)   # a retry scheduled for a moment later, or workers elsewhere
                state = runs.progress(run_id)
                elapsed = time.monotonic() - start
                rate = (state.devices_done - start_done) / elapsed if elapsed > 0 else 0.0
                bar.update(task, completed=state.devices_done, rate=f"{rate:,.0f}/s")
    except KeyboardInterrupt:
        interrupted = True
    try:
        _stop(started)
    except KeyboardInterrupt:
        _stop(started, now=True)
    if interrupted:
        state = runs.progress(run_id)
        click.echo(f"interrupted: {state.devices_done} of {state.device_count} devices sent to; `smki estate send "
                   f"--resume {run_id}` carries on (no device gets a second command)", err=True)
        sys.exit(130)


def _start_workers(jobs: EstateJobs, workers: int, queue: str | None) -> list[subprocess.Popen[bytes]]:
    started: list[subprocess.Popen[bytes]] = []
    if not workers:
        return started
    log = jobs.instance.settings.instance_dir / "estate-workers.log"
    command = [sys.executable, "-m", "smki.estate.cli", "worker", "--workers", "1"]
    if queue:
        command += ["--queue", queue]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        for _ in range(workers):
            started.append(subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=handle))
    return started


def _send_report(runs: Any, run_id: int, outcomes_file: Path | None, as_json: bool) -> None:
    state = runs.progress(run_id)
    report = runs.report(run_id)
    if outcomes_file is not None:
        with outcomes_file.open("w", encoding="utf-8") as handle:
            for device_id, outcome in runs.outcomes(run_id):
                handle.write(json.dumps({"device_id": device_id, **outcome.as_dict()}) + "\n")
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "status": state.status, "chunks_failed": state.chunks_failed},
                              indent=2))
    else:
        click.echo(f"send run {run_id}: {report.devices} devices, {report.answered} answered, {report.verified} "
                   f"responses verified; " + ", ".join(f"{n} {s}" for s, n in sorted(report.by_status.items())))
        for status_name, number in sorted(report.statuses.items()):
            click.echo(f"  {status_name}: {number} cells")
        for code, number in sorted(report.refused.items()):
            click.echo(f"  {code}: {number} devices")
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
    for chunk, code, text in state.failures:
        click.echo(f"chunk {chunk}: {code} {text}", err=True)
    if state.chunks_failed:
        click.echo(f"{state.chunks_failed} chunks failed: fix the cause, then `smki estate send --resume {run_id}`",
                   err=True)
        sys.exit(1)
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
