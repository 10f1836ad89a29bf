"""Keep every process a step starts inside a box we can empty: no step outlives its worker.

A step's own process group is not enough: a grandchild that calls ``setsid()`` leaves it,
and the kernel's parent-death signal reaches only direct children. So, where the machine
lets us (cgroup v2, writable: root, or a delegated subtree), each code host gets a cgroup
``job-orchestration/<host>-w<worker pid>-<start>/h<host pid>`` that its steps join before
any user code runs; after each attempt the group is emptied (``cgroup.kill``), and a worker
that starts or reaps claims empties the groups of workers that died (kill -9 leaves nothing
behind to do it). Elsewhere the code host is a child subreaper: orphans of its steps are
re-parented to it and killed after each attempt; only a kill -9 of the whole worker can then
leave a ``setsid`` grandchild running (the README says so).
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import time
from pathlib import Path

from .fsutil import HOST, pid_alive

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
TOP = "job-orchestration"
EMPTY_WAIT_SECONDS = 2.0
try:  # loaded once: dlopen in every forked child would cost a millisecond each
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), so no step or
    runner outlives the worker that started it. ``parent`` is the pid the parent had before
    it forked us: if it died before the signal was armed, ``getppid()`` already differs,
    and we go at once instead of running as a ghost."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(137)


def become_subreaper() -> bool:
    return _LIBC is not None and _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): with the pid, it names one
    process for good, where a pid alone can be reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@functools.lru_cache(maxsize=4)
def _cgroups_of(pid: int) -> dict[str, Path]:
    """The cgroup folders of this process (``pid`` keys the cache: a forked child that moved
    into a group of its own asks again): ``"v2"`` (the unified hierarchy) and ``"memory"`` (a
    v1 memory controller), where mounted."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    found: dict[str, Path] = {}
    for line in mounts:
        fields = line.split()
        if "-" not in fields:
            continue
        fstype, options = fields[fields.index("-") + 1], fields[-1].split(",")
        for entry in own:
            _, controllers, path = entry.split(":", 2)
            if fstype == "cgroup2" and controllers == "":
                found.setdefault("v2", Path(fields[4]) / path.lstrip("/"))
            elif fstype == "cgroup" and "memory" in options and "memory" in controllers:
                found.setdefault("memory", Path(fields[4]) / path.lstrip("/"))
    return found


def _own_cgroups() -> dict[str, Path]:
    return _cgroups_of(os.getpid())


def _cgroup_root() -> Path | None:
    """This process's own cgroup v2 folder, if we may create groups inside it."""
    root = _own_cgroups().get("v2")
    if root is not None and (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
        return root
    return None


def oom_kills() -> int | None:
    """How many processes of our memory cgroup the kernel's OOM killer has killed so far
    (None where the kernel does not say): an increase across an attempt whose step died of
    SIGKILL means the OOM killer did it."""
    groups = _own_cgroups()
    for folder, name in ((groups.get("v2"), "memory.events"),
                         (groups.get("memory"), "memory.oom_control")):
        try:
            for line in (folder / name).read_text().splitlines():  # type: ignore[operator]
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, TypeError, ValueError):
            continue
    return None


def kill_group(folder: Path) -> bool:
    """Kill every process in the cgroup ``folder`` (and below) and remove it; True when
    there was a process to kill."""
    alive = any(procs.read_text().strip() for procs in folder.rglob("cgroup.procs"))
    if alive:
        try:
            (folder / "cgroup.kill").write_text("1")
        except OSError:
            _kill_listed(folder)
    deadline = time.monotonic() + EMPTY_WAIT_SECONDS
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir():
            _remove(sub, deadline)
    _remove(folder, deadline)
    return alive


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # gone already
            pass


def _kill_listed(folder: Path, spare: int | None = None) -> None:
    """Kill each process listed in ``folder`` (and below) but ``spare``, until none is left
    (a process may fork while we kill: look again, a bounded number of times)."""
    for _ in range(100):
        pids = [int(pid) for procs in folder.rglob("cgroup.procs")
                for pid in procs.read_text().split() if int(pid) != spare]
        if not pids:
            return
        _kill_all(pids)
        time.sleep(0.001)  # let the killed exit before we list again


def _remove(folder: Path, deadline: float) -> None:
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY: its processes are still exiting
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)


class Box:
    """The calling code host and everything its steps start.

    The host moves itself into the box once, and each step it forks is born inside (moving
    a process into a cgroup costs 1.6 ms of CPU, measured here: once per experiment, not
    per step). After an attempt, whatever is in the box but the host is what the step left
    behind."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @classmethod
    def for_host(cls, worker_pid: int | None) -> "Box":
        """A fresh cgroup holding the calling code host, or (without writable cgroups) the
        host made a subreaper."""
        root = _cgroup_root() if worker_pid else None
        if root is not None:
            folder = root / TOP / f"{HOST}-w{worker_pid}-{_start_time(worker_pid)}" / \
                f"h{os.getpid()}"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "cgroup.procs").write_text("0")
                return cls(folder)
            except OSError:
                pass
        become_subreaper()
        return cls(None)

    def empty(self, step_pid: int) -> None:
        """After an attempt: kill whatever the step left behind (its group, its box)."""
        try:
            os.killpg(step_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.folder is not None:
            _kill_listed(self.folder, spare=os.getpid())
        else:
            _kill_orphans()

    def close(self) -> None:
        """The host leaves its box (back to the worker's group), then empties and removes
        it."""
        if self.folder is not None:
            try:
                (self.folder.parent / "cgroup.procs").write_text("0")
            except OSError:
                return
            kill_group(self.folder)


def _kill_orphans() -> None:
    """As a subreaper: kill and reap the descendants that were re-parented to us."""
    while True:
        children = []
        for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
            try:
                children += [int(pid) for pid in task.read_text().split()]
            except OSError:
                continue
        if not children:
            return
        _kill_all(children)
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def reap_dead_workers() -> list[str]:
    """Empty the cgroups of this host's workers that died (kill -9 leaves their steps'
    detached descendants running); returns the groups emptied."""
    root = _cgroup_root()
    if root is None:
        return []
    done = []
    prefix = f"{HOST}-w"
    for folder in (root / TOP).glob(f"{prefix}*"):
        pid_text, _, started = folder.name[len(prefix):].partition("-")
        owner_alive = pid_text.isdigit() and pid_alive(int(pid_text)) and (
            _start_time(int(pid_text)) == started)
        if not owner_alive and kill_group(folder):
            done.append(folder.name)
    return done
