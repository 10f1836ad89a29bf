"""Claiming configs: the workspace, not Luigi's scheduler, decides who runs an experiment.

A claim is an atomic ``os.rename`` of the config into ConfigsInProgress (exactly one of
several racing workers wins) plus an owner file beside it naming host, pid and start time.
The owner's heartbeat is the owner file's mtime. A claim is *dead* when its pid is gone on
this host, or its heartbeat is older than the lease on another host; the next worker puts a
dead claim back in the queue and, because finished steps have markers, loses no work. The
owner writes its lease into the owner file: it promises to beat more often than that, so
every other worker judges it by its own promise, whatever their own ``--lease``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .fsutil import HOST, atomic_write_json, pid_alive
from .states import ExperimentState
from .workspace import Workspace

DEFAULT_LEASE_SECONDS = 300.0
NO_OWNER_GRACE_SECONDS = 30.0  # a claim is renamed a moment before its owner file is written


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: float
    heartbeat: float
    lease: float | None = None  # what the owner promised; None in files of older versions


def owner_file(ws: Workspace, name: str) -> Path:
    return ws.folder(ExperimentState.RUNNING) / f"{name}.owner.json"


def claim(ws: Workspace, path: Path, pid: int | None = None,
          lease: float = DEFAULT_LEASE_SECONDS) -> Path | None:
    """Take the queued config ``path``; None when another worker got it first.

    Only a rename that succeeds wins. A failed one may be NFS reporting ENOENT for a retried
    rename that did succeed, but it may just as well be another worker's win whose owner file
    is not written yet: taking the claim then would run the experiment twice. So a failed
    rename always loses; in the rare NFS case the config sits in ConfigsInProgress with no
    owner file and ``requeue_dead`` queues it again after ``NO_OWNER_GRACE_SECONDS``."""
    dest = ws.folder(ExperimentState.RUNNING) / path.name
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None  # lost the race: normal
    atomic_write_json(owner_file(ws, path.stem), {"host": HOST, "pid": pid or os.getpid(),
                                                   "started": time.time(), "lease": lease},
                      durable=False)
    return dest


def read_owner(path: Path) -> Owner | None:
    """The owner recorded in an owner file, its mtime as the heartbeat; None if unreadable."""
    try:
        data = json.loads(path.read_bytes())
        beat = path.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    lease = data.get("lease")
    return Owner(str(data.get("host", "?")), int(data.get("pid", 0)),
                 float(data.get("started", 0)), beat,
                 float(lease) if isinstance(lease, (int, float)) else None)


def owner_dead(owner: Owner, lease: float) -> bool:
    """Same host: the pid is gone. Other host: no heartbeat for longer than the owner's own
    lease (``lease`` when the owner file does not say)."""
    if owner.host == HOST:
        return not pid_alive(owner.pid)
    return time.time() - owner.heartbeat > (owner.lease or lease)


def heartbeat(ws: Workspace, names: list[str]) -> None:
    """Show that this worker is alive (the owner file's mtime is the heartbeat)."""
    for name in names:
        try:
            os.utime(owner_file(ws, name))
        except FileNotFoundError:
            pass


def is_dead(ws: Workspace, path: Path, lease: float = DEFAULT_LEASE_SECONDS) -> bool:
    owner = read_owner(owner_file(ws, path.stem))
    if owner is not None:
        return owner_dead(owner, lease)
    try:
        return time.time() - path.stat().st_ctime > NO_OWNER_GRACE_SECONDS  # ctime: the rename
    except FileNotFoundError:
        return False


def live_claims(ws: Workspace, names: list[str],
                lease: float = DEFAULT_LEASE_SECONDS) -> set[str]:
    """Which of the running experiments ``names`` a live worker holds."""
    live = set()
    for name in names:
        owner = read_owner(owner_file(ws, name))
        if owner is not None and not owner_dead(owner, lease):
            live.add(name)
    return live


def release(ws: Workspace, path: Path) -> Path | None:
    """Put a claimed config back in the queue (its finished steps stay finished)."""
    try:
        dest = ws.move(path, ExperimentState.QUEUED)
    except FileNotFoundError:
        return None
    owner_file(ws, path.stem).unlink(missing_ok=True)
    return dest


def finish(ws: Workspace, path: Path, to: ExperimentState, reason: str | None = None) -> Path:
    """The final move of a run: Completed, or Failed with its reason file."""
    dest = ws.fail(path, reason or "failed") if to is ExperimentState.FAILED else ws.move(path, to)
    owner_file(ws, path.stem).unlink(missing_ok=True)
    return dest


def requeue_dead(ws: Workspace, lease: float = DEFAULT_LEASE_SECONDS) -> list[str]:
    """Put every dead claim back in the queue; returns their names.

    The owner file is first renamed aside, so of several workers reaping at once only one
    acts, and a claim that came alive meanwhile (a new owner) is given back untouched.
    """
    names = []
    for path in ws.config_files(ExperimentState.RUNNING):
        if not is_dead(ws, path, lease):
            continue
        owner = owner_file(ws, path.stem)
        aside = owner.with_name(f"{owner.name}.reap-{os.getpid()}")
        try:
            os.rename(owner, aside)
        except FileNotFoundError:
            aside = None  # no owner file at all (crash right after the claim rename)
        previous = read_owner(aside) if aside is not None else None
        if previous is not None and not owner_dead(previous, lease):
            os.rename(aside, owner)
            continue
        if release(ws, path) is not None:
            names.append(path.stem)
        if aside is not None:
            aside.unlink(missing_ok=True)
    return names
