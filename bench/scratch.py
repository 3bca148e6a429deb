"""What a benchmark makes that must not outlive it: temporary folders, PostgreSQL databases, and server
processes. All are undone, newest first, on any exit: a normal return, an exception, Ctrl-C (SIGINT),
SIGTERM or SIGHUP.

- Every process is started in a process group of its own (``start_new_session``), so stopping it stops
  everything it started (gunicorn's workers, the batch worker, the publisher): SIGTERM to the group, a grace
  period, then SIGKILL to whatever of the group is left. Linux also sends the leader SIGTERM if the benchmark
  itself dies without a chance to clean up (``PR_SET_PDEATHSIG``).
- Every PostgreSQL run gets a fresh database of its own, ``smki_bench_<pid>_<random>``, dropped at the end
  (``WITH (FORCE)``), so a benchmark reruns against the same server any number of times. Databases left by a
  benchmark that was SIGKILLed are dropped by the next run, once their process is gone.

Signal handlers turn SIGTERM and SIGHUP into ``SystemExit``, so ``finally`` blocks and context managers run
as they do for Ctrl-C; an ``atexit`` hook undoes whatever is left. While undoing, further SIGINT/SIGTERM are
ignored, so a second Ctrl-C cannot leave half a cleanup.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from smki.core.db import normalise_url

DATABASE_PREFIX = "smki_bench_"
_DATABASE_NAME = re.compile(rf"^{DATABASE_PREFIX}(\d+)_(\d+)_[0-9a-f]+$")
_PR_SET_PDEATHSIG = 1


class Scratch:
    """A stack of things to undo; :func:`scratch` gives the process's one instance."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self._owner = os.getpid()

    def push(self, what: str, undo: Callable[[], None]) -> None:
        self._undo.append((what, undo))

    def directory(self, prefix: str = "smki-bench-") -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.push(f"remove {path}", lambda: shutil.rmtree(path, ignore_errors=True))
        return path

    def database(self, server_url: str) -> str:
        """A fresh, empty PostgreSQL database on the server ``server_url`` names; returns its URL.

        ``server_url`` names any database the user may connect to (it is used only to create and drop).
        """
        admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                _drop_stale(connection)
                name = f"{DATABASE_PREFIX}{_pid_namespace()}_{os.getpid()}_{secrets.token_hex(4)}"
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        self.push(f"drop database {name}", lambda: drop_database(server_url, name))
        return make_url(server_url).set(database=name).render_as_string(hide_password=False)

    def spawn(self, command: Sequence[str], *, env: Mapping[str, str], log: Path,
              grace: float = 20.0) -> subprocess.Popen[bytes]:
        """Start ``command`` in a process group of its own, output appended to ``log``; stopped at the end."""
        handle = log.open("ab")
        process = subprocess.Popen(list(command), env=dict(env), stdin=subprocess.DEVNULL, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        handle.close()  # the child holds its own copy

        def stop() -> None:
            stop_group(process, grace)

        self.push(f"stop {' '.join(command[:4])} (process group {process.pid})", stop)
        return process

    def close(self) -> None:
        """Undo everything, newest first. Only in the process that made it (not in forked children)."""
        if os.getpid() != self._owner:
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for s in previous:
                signal.signal(s, signal.SIG_IGN)
        except ValueError:  # not the main thread: signals cannot be changed, nor interrupt us
            previous = {}
        try:
            while self._undo:
                what, undo = self._undo.pop()
                try:
                    undo()
                except Exception as error:  # one failed step must not keep the others from running
                    print(f"cleanup: could not {what}: {error}", file=sys.stderr, flush=True)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process group of ``process``, up to ``grace`` seconds for all of it to go, then SIGKILL."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader, so that only live members keep the group
        if not _group_alive(group):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _group_alive(group: int) -> bool:
    if os.path.isdir("/proc"):  # a zombie nobody has reaped yet still answers kill(0): it is gone all the same
        return any(state != "Z" for _pid, state, _fields in group_processes(group))
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_processes(group: int) -> list[tuple[int, str, list[str]]]:
    """(pid, state, the fields of ``/proc/<pid>/stat`` after the command name) of each process of ``group``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ... (fields 3, 4, 5 of the file)
        if int(fields[2]) == group:
            found.append((int(entry), fields[0], fields))
    return found


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark's process dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def drop_database(server_url: str, name: str) -> None:
    from smki.core.db import dispose_all

    dispose_all()  # this process's own pooled connections to it
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _drop_stale(connection: Connection) -> None:
    """Drop benchmark databases whose process no longer exists (a run that was SIGKILLed).

    Only those made in this PID namespace, where "no such process" means the run is over: the server
    may be shared with benchmarks running elsewhere.
    """
    names = connection.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                               {"p": f"{DATABASE_PREFIX}%"}).scalars().all()
    for name in names:
        match = _DATABASE_NAME.match(name)
        if match and match.group(1) == _pid_namespace() and not _process_exists(int(match.group(2))):
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pid_namespace() -> str:
    try:
        return "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()) or "0"
    except OSError:
        return "0"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_SCRATCH: Scratch | None = None


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def forked_worker_signals() -> None:
    """``multiprocessing.Pool(initializer=...)``: a pool's worker dies on SIGTERM at once (how the pool stops
    it) and leaves Ctrl-C to the benchmark's process, rather than inheriting the benchmark's handlers."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def scratch() -> Scratch:
    """The process's scratch stack, undone at exit; SIGTERM and SIGHUP exit through it as Ctrl-C does."""
    global _SCRATCH
    if _SCRATCH is None or _SCRATCH._owner != os.getpid():
        _SCRATCH = Scratch()
        atexit.register(_SCRATCH.close)
        with contextlib.suppress(ValueError):  # only the main thread may set handlers
            for s in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(s) in (signal.SIG_DFL, None):
                    signal.signal(s, _exit_on_signal)
    return _SCRATCH
