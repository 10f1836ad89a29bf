"""Crash-safe file writes: a reader sees the old content or the new, never a torn file.

Markers and run records are the only evidence that work finished, so they are written to a
temp file in the same folder, fsynced, renamed over the target and the folder fsynced.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TMP_MARK = ".tmp-orch-"
HOST = socket.gethostname()
FOREIGN_TEMP_SECONDS = 3600.0  # one write takes far less; older is a crash's leftover


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """Where to write ``path`` before renaming it into place: named by host and pid, so a
    cleanup on any machine of a shared workspace can tell a live writer's file."""
    return path.with_name(f"{TMP_MARK}{os.getpid()}@{HOST}~{path.name}")


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically; ``durable`` adds the fsyncs."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1, default=str).encode(), durable)


@contextmanager
def locked(path: Path, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files a crash left behind in ``folder`` (not recursive); returns the count."""
    count = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(TMP_MARK):
            if _writer_may_be_alive(entry):
                continue
        elif "-luigi-tmp-" not in entry.name:
            continue
        try:
            os.unlink(entry.path)
            count += 1
        except FileNotFoundError:
            pass
    return count


def _writer_may_be_alive(entry: os.DirEntry) -> bool:
    rest = entry.name[len(TMP_MARK):]
    owner = rest.split("~", 1)[0] if "~" in rest else rest.split("-", 1)[0]
    pid, _, host = owner.partition("@")
    if host and host != HOST:  # another machine's pid means nothing here: go by age
        try:
            return time.time() - entry.stat().st_mtime < FOREIGN_TEMP_SECONDS
        except FileNotFoundError:
            return False
    return pid.isdigit() and pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, IndexError):
        return True
