"""Who holds a running experiment: owner files, heartbeats, and when an owner is dead.

The workspace, not Luigi's scheduler, decides who runs an experiment: a claim is an atomic
``os.rename`` of the config into ConfigsInProgress (exactly one of several racing workers
wins; the lifecycle module does it) plus an owner file beside it naming host, pid and start
time. The owner's heartbeat is the owner file's mtime. A claim is *dead* when its pid is gone
on this host, or its heartbeat is older than the lease on another host. The owner writes its
lease into the owner file: it promises to beat more often than that, so every other worker
judges it by its own promise, whatever their own ``--lease``.
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

    def dead(self, lease: float) -> bool:
        """Same host: the pid is gone. Other host: no heartbeat for longer than the owner's
        own lease (``lease`` when the owner file does not say)."""
        if self.host == HOST:
            return not pid_alive(self.pid)
        return time.time() - self.heartbeat > (self.lease or lease)


def owner_file(ws: Workspace, name: str) -> Path:
    return ws.folder(ExperimentState.RUNNING) / f"{name}.owner.json"


def write_owner(ws: Workspace, name: str, pid: int, lease: float) -> None:
    atomic_write_json(owner_file(ws, name), {"host": HOST, "pid": pid, "started": time.time(),
                                             "lease": lease}, durable=False)


def read_owner(path: Path) -> Owner | None:
    """The owner recorded in an owner file, its mtime as the heartbeat; None if unreadable."""
    try:
        data = json.loads(path.read_bytes())
        beat = path.stat().st_mtime
        lease = data.get("lease")
        return Owner(str(data.get("host", "?")), int(data.get("pid", 0)),
                     float(data.get("started", 0)), beat,
                     float(lease) if isinstance(lease, (int, float)) else None)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


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
        return owner.dead(lease)
    try:
        return time.time() - path.stat().st_ctime > NO_OWNER_GRACE_SECONDS  # ctime: the rename
    except FileNotFoundError:
        return False


def ownerless(ws: Workspace) -> list[str]:
    """Claims with no owner file: a worker between its claim's rename and its owner file,
    or one killed right there (``reap_dead`` takes those once the grace has passed)."""
    return [path.stem for path in ws.config_files(ExperimentState.RUNNING)
            if not owner_file(ws, path.stem).exists()]


def live_claims(ws: Workspace, names: list[str],
                lease: float = DEFAULT_LEASE_SECONDS) -> set[str]:
    """Which of the running experiments ``names`` a live worker holds."""
    live = set()
    for name in names:
        owner = read_owner(owner_file(ws, name))
        if owner is not None and not owner.dead(lease):
            live.add(name)
    return live


def take_over(ws: Workspace, path: Path, lease: float) -> bool:
    """Become the one process that handles the dead claim ``path``.

    The owner file is renamed aside first, so of several workers reaping at once only one
    acts, and a claim that came alive meanwhile (a new owner) is given back untouched."""
    if not is_dead(ws, path, lease):
        return False
    owner = owner_file(ws, path.stem)
    aside = owner.with_name(f"{owner.name}.reap-{os.getpid()}")
    try:
        os.rename(owner, aside)
    except FileNotFoundError:
        return path.exists()  # no owner file at all (a crash right after the claim rename)
    previous = read_owner(aside)
    if previous is not None and not previous.dead(lease):
        os.rename(aside, owner)
        return False
    aside.unlink(missing_ok=True)
    return True
