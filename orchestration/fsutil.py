"""Crash-safe file writes, locks and process checks: the few primitives every state change uses.

A reader sees a file's old content or its new one, never a torn file: markers and run records
are the only evidence that work finished, so they are written to a temp file in the same
folder, fsynced, renamed over the target and the folder fsynced (``atomic_write``).
"""
from __future__ import annotations

import ctypes
import fcntl
import itertools
import json
import math
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TMP_MARK = ".tmp-orch-"
HOST = socket.gethostname()
FOREIGN_TEMP_SECONDS = 3600.0  # one write takes far less; older is a crash's leftover
FSYNC_EACH_MAX = 16  # more files than this in one batch: one syncfs instead of fsyncs
_TEMP_NAME_CHARS = 60  # of the target's name: temp names must fit NAME_MAX with host and pid
_serial = itertools.count()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """Where to write ``path`` before renaming it into place: named by host and pid, so a
    cleanup on any machine of a shared workspace can tell a live writer's file."""
    return path.with_name(f"{TMP_MARK}{os.getpid()}@{HOST}~{next(_serial)}~"
                          f"{path.name[:_TEMP_NAME_CHARS]}")


def atomic_write(path: Path, data: bytes | str, *, durable: bool = True,
                 exclusive: bool = False, sync_folder: bool = True) -> None:
    """Put ``data`` at ``path`` whole or not at all.

    ``durable`` adds the fsyncs (file, then folder) that make the write survive a power cut;
    ``sync_folder=False`` keeps the file's only: after a power cut the file is then whole or
    absent (the rename may be lost), never empty under its name.
    ``exclusive`` never replaces an existing file (FileExistsError): the file is linked into
    place instead of renamed, which fails if the name is taken.
    """
    atomic_write_all([(path, data)], durable=durable, exclusive=exclusive,
                     sync_folder=sync_folder)


def atomic_write_all(files: list[tuple[Path, bytes | str]], *, durable: bool = True,
                     exclusive: bool = False, sync_folder: bool = True) -> None:
    """``atomic_write`` for many files of one folder: for a big batch, one ``syncfs`` of the
    file system replaces one fsync per file (1000 fsyncs took 0.8 s on our CI disk, one
    syncfs 0.02 s). A file that exists already (``exclusive``) stops the batch there."""
    if not files:
        return
    each = durable and len(files) <= FSYNC_EACH_MAX
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            temps.append((temp_path(path), path))
            with open(temps[-1][0], "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                if each:
                    fh.flush()
                    os.fsync(fh.fileno())
        if durable and not each:
            _sync_filesystem(files[0][0].parent)
        for tmp, path in temps:
            if exclusive:
                os.link(tmp, path)
            else:
                os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if exclusive or os.path.lexists(tmp):
                tmp.unlink(missing_ok=True)
    if durable and sync_folder:
        for folder in {path.parent for path, _ in files}:
            fsync_dir(folder)


def _sync_filesystem(folder: Path) -> None:
    """Flush every written file of ``folder``'s file system in one call (sync(2) where
    syncfs(2) is missing)."""
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is not None:
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def json_safe(value: Any, non_finite: Any = None) -> Any:
    """``value`` with every NaN or infinity replaced by ``non_finite``: they are not JSON,
    and other tools (jq, browsers, pandas' strict readers) refuse files that hold them."""
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite(value) if callable(non_finite) else non_finite
    if isinstance(value, dict):
        return {k: json_safe(v, non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, non_finite) for v in value]
    return value


def dumps(data: Any, indent: int | None = 1) -> str:
    """JSON as every file of ours holds it: valid JSON (non-finite numbers as strings)."""
    try:
        return json.dumps(data, indent=indent, default=str, allow_nan=False)
    except ValueError:  # a NaN somewhere: rare, so the walk is paid only then
        return json.dumps(json_safe(data, repr), indent=indent, default=str)


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    atomic_write(path, dumps(data), durable=durable)


def read_json(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


@contextmanager
def locked(path: Path, mode: int = 0o600) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block; yields the
    descriptor, so a forked child can close it (a lock inherited by a child that outlives the
    block would hold it on)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


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
    owner = entry.name[len(TMP_MARK):].split("~", 1)[0]
    pid, _, host = owner.partition("@")
    if host and host != HOST:  # another machine's pid means nothing here: go by age
        try:
            return time.time() - entry.stat().st_mtime < FOREIGN_TEMP_SECONDS
        except FileNotFoundError:
            return False
    return pid.isdigit() and pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` runs on this host (a zombie has finished: dead)."""
    if pid <= 0:
        return False
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
