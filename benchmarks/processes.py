"""A worker's processes as the benchmarks see them: its process tree by role, and the
memory of each (``overhead.py`` reports it)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from synthetic import ENV, code_folder, write_config  # first: it puts the checkout on sys.path

from orchestration.ready import ready_all  # noqa: E402
from orchestration.states import ExperimentState  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402

MB = 1024 * 1024
ROLES = ("worker", "runner", "zygote", "code host", "step")  # a worker's process tree, by depth


def _tree(pid: int) -> list[list[int]]:
    """``pid`` and its descendants, by depth."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    levels = [[pid]]
    while nxt := [c for p in levels[-1] for c in children.get(p, [])]:
        levels.append(nxt)
    return levels


def _kb(path: str, key: str) -> int:
    with open(path) as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _memory_of(pid: int) -> dict[str, dict[str, float]]:
    """VmRSS and PSS (forked processes share pages: RSS counts them in each) of ``pid``
    and its descendants, by role, in MB."""
    found = {}
    for role, pids in zip(ROLES, _tree(pid)):
        try:
            found[role] = {"rss": sum(_kb(f"/proc/{p}/status", "VmRSS") for p in pids) / MB,
                           "pss": sum(_kb(f"/proc/{p}/smaps_rollup", "Pss") for p in pids) / MB}
        except OSError:
            continue
    return found


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)
    return value


def memory(root: Path) -> dict[str, Any]:
    """A ``worker`` CLI process waiting on an empty queue; then while a step of one
    experiment runs (worker, runner, zygote, code host, step); then idle again, the code
    host kept for a next experiment."""
    ws = Workspace(root / "ws")
    ws.init()
    code = code_folder(root)
    proc = subprocess.Popen([sys.executable, "-m", "orchestration", "--workspace",
                             str(ws.root), "worker", "--poll", "0.2"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait(lambda: "waiting for configs" in proc.stdout.readline(), 60, "the worker")
        idle = _memory_of(proc.pid)
        release = root / "release"
        write_config(ws, "hold", code, ["Hold"], release=str(release))
        ready_all(ws)
        _wait(lambda: len(_tree(proc.pid)) == len(ROLES), 60, "the step to start")
        busy = _memory_of(proc.pid)
        release.touch()
        _wait(lambda: ws.find("hold")[0] is ExperimentState.COMPLETED, 60, "the step to end")
        # the step gone; the code host is kept for the next experiment (30 s idle)
        _wait(lambda: len(_tree(proc.pid)) <= 4, 10, "the step to exit")
        after = _memory_of(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    with_runner = ("worker", "runner", "zygote", "code host")
    return {"idle_worker_rss": idle["worker"]["rss"], "idle": idle, "busy": busy,
            "after_run": after,
            "busy_worker_runner_host_rss": sum(busy[r]["rss"] for r in with_runner),
            "busy_worker_runner_host_pss": sum(busy[r]["pss"] for r in with_runner)}
