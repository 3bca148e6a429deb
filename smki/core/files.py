"""Files written so that a crash, or another process doing the same at the same moment, never leaves half a
file or two different ones."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def staged(path: Path, data: bytes) -> Path:
    """``data`` in a new owner-only file beside ``path``, flushed to disk, under a name no other process uses
    (a fixed ``.tmp`` name lets two processes truncate, rename and remove each other's file)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` whole: a crash leaves the old file or the new, never half (owner-only permissions)."""
    os.replace(staged(path, data), path)


def create_once(path: Path, data: bytes) -> bytes:
    """Create ``path`` holding ``data`` unless it exists, and return what it holds. First writer wins: the
    complete file is linked into place, and ``link`` fails rather than replace a file another process put there
    first, so every process that races here ends up with the same content."""
    staged_file = staged(path, data)
    try:
        os.link(staged_file, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(staged_file)
    return path.read_bytes()
