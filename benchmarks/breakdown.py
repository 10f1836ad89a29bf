"""Where a worker's time goes, per step and between experiments: a timeline of every process.

Runs ``ready`` + ``Worker(exit_when_empty)`` over M experiments x 3 trivial steps (as
``overhead.py`` does, in this lean process) with timing wrappers around the functions named
in ``SPANS``; the wrappers are installed before the worker forks, so its runners, their
zygote, the code hosts and the steps' processes carry them too. Each call appends
``pid ppid name start end`` (CLOCK_MONOTONIC, shared by all processes) to one file, which
is then summed per process role and per step. Names the code no longer has are listed and
skipped: the wrappers follow the internals, which change.

    python benchmarks/breakdown.py --m 100            # 1 worker
    python benchmarks/breakdown.py --m 100 --keep /tmp/trace.txt
    python benchmarks/breakdown.py --m 100 --without cgroups fsync   # what-if runs
    python benchmarks/breakdown.py --m 100 --luigi-imported          # a Luigi-loaded caller

The wrappers cost about 5 us a call (a few hundred calls per experiment): subtract nothing,
but read the figures as shares of a slightly slower run.
"""
from __future__ import annotations

import argparse
import collections
import functools
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from synthetic import code_folder, write_config  # first: it puts the checkout on sys.path

from processes import ROLES  # noqa: E402

from orchestration.ready import ready_all  # noqa: E402
from orchestration.worker import Worker  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402

# (module, attribute path): timed wherever the attribute is looked up at call time
SPANS = [
    # the worker process
    ("orchestration.worker", "Worker._claim_next"),
    ("orchestration.worker", "Worker._ended"),
    ("orchestration.worker", "Worker._read_events"),
    ("orchestration.worker", "Worker._wait"),
    ("orchestration.lifecycle", "claim"),
    ("orchestration.records.run_provenance", "recheck"),
    ("orchestration.adaptive.hooks", "experiment_ended"),
    ("orchestration.notify", "Notifier.ended"),
    ("orchestration.notify", "Notifier.poll"),
    ("orchestration.claims", "write_owner"),
    ("orchestration.claims", "heartbeat"),
    # the slot runner
    ("orchestration.runner", "_Runner.run"),
    ("orchestration.runner", "_Runner._luigi_run"),
    ("orchestration.runner", "_Runner._forget"),
    ("orchestration.runner", "_Runner._worker"),
    ("orchestration.runner", "_Runner._send"),
    ("orchestration.plan", "Plan.load"),
    ("orchestration.plan", "Plan.finished"),
    ("orchestration.plan", "Plan.inputs.func"),
    ("orchestration.steps", "HostPool.host"),
    ("orchestration.steps", "HostPool.release"),
    ("orchestration.steps", "_note"),
    ("orchestration.steps", "run_step"),
    ("orchestration.steps", "_Live.begin"),
    ("orchestration.codehost", "CodeHost.start"),
    ("orchestration.codehost", "CodeHost.call"),
    ("orchestration.codehost", "CodeHost.close"),
    ("orchestration.codehost", "Zygote.spawn"),
    ("orchestration.lifecycle", "step_completed"),
    ("orchestration.lifecycle", "step_progress"),
    ("orchestration.lifecycle", "complete"),
    ("orchestration.lifecycle", "_move_claimed"),
    ("orchestration.records.run_record", "update"),
    ("orchestration.records.run_record", "RunRecord.load"),
    ("orchestration.records.run_record", "Marker.read"),
    ("orchestration.fsutil", "atomic_write_all"),
    ("orchestration.fsutil", "fsync_dir"),
    ("orchestration.workspace", "Workspace.find"),
    ("os", "fsync"),
    ("os", "fork"),
    # the code host and the step's process
    ("orchestration.codehost", "run_attempt"),
    ("orchestration.codehost", "_host_main"),
    ("orchestration.sandbox", "_watch"),
    ("orchestration.sandbox", "_outcome"),
    ("orchestration.sandbox", "oom_kills"),
    ("orchestration.sandbox", "die_with_parent"),
    ("orchestration.sandbox", "_streams_on_fds"),
    ("orchestration.sandbox", "to_json_value"),
    ("orchestration.containment", "Box.empty"),
    ("os", "wait4"),
]
# imported by the runner only (they import Luigi): wrapped when the runner has them
LUIGI_SPANS = [
    ("luigi.worker", "Worker.add"),
    ("luigi.worker", "Worker.run"),
    ("luigi.worker", "Worker._run_task"),
    ("luigi.worker", "Worker._get_work"),
    ("luigi.worker", "Worker._handle_next_task"),
    ("luigi.worker", "Worker._add"),
    ("luigi.worker", "Worker._check_complete_value"),
    ("luigi.worker", "TaskProcess.run"),
    ("luigi.scheduler", "Scheduler.add_task"),
    ("luigi.scheduler", "Scheduler.get_work"),
    ("luigi.task_register", "Register.__call__"),
    ("orchestration.pipeline.luigi_tasks", "Step.run"),
    ("orchestration.pipeline.luigi_tasks", "run_step"),
    ("orchestration.pipeline.luigi_tasks", "ensure_claimed"),
    ("orchestration.pipeline.luigi_tasks", "MarkerTarget.exists"),
    ("orchestration.pipeline.luigi_tasks", "LuigiProgress.update"),
]
POINTS = [("os", "_exit"), ("orchestration.sandbox", "_child"),
          ("orchestration.codehost", "_target")]


def _no_cgroups() -> None:
    from orchestration import containment

    containment._cgroup_root = lambda: None


def _no_fsync() -> None:
    os.fsync = lambda fd: None


WITHOUT = {"cgroups": _no_cgroups, "fsync": _no_fsync}


class Trace:
    """Appends one line per timed call to ``path`` from whichever process makes it."""

    def __init__(self, path: str) -> None:
        self.path, self.fd, self.ino, self.pid = path, -1, os.stat(path).st_ino, -1

    def emit(self, name: str, start: float, end: float) -> None:
        if self.pid != os.getpid() or not self._ours():
            # a forked process, or one that closed every descriptor it did not know
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.pid = os.getpid()
        os.write(self.fd, f"{self.pid} {os.getppid()} {name} {start:.7f} {end:.7f}\n".encode())

    def _ours(self) -> bool:
        try:
            return os.fstat(self.fd).st_ino == self.ino
        except OSError:
            return False


def _resolve(module: str, path: str) -> tuple[Any, str] | None:
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *parents, attr = path.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, attr) if hasattr(owner, attr) else None


def _span(trace: Trace, name: str, fn: Callable) -> Callable:
    clock = time.monotonic

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            trace.emit(name, start, clock())
    return timed


def _point(trace: Trace, name: str, fn: Callable) -> Callable:
    """Marks the moment of the call (for calls that never return: os._exit, a child's body),
    and, for a factory of callables (codehost._target), times what it returns."""
    @functools.wraps(fn)
    def marked(*args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        trace.emit(name, now, now)
        value = fn(*args, **kwargs)
        return _span(trace, f"{name}()", value) if callable(value) else value
    return marked


def install(trace: Trace, spans: list[tuple[str, str]],
            points: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> list[str]:
    """Wrap what is found; returns the names not found."""
    missing = []
    for wrap, items in ((_span, spans), (_point, points)):
        for module, path in items:
            found = _resolve(module, path)
            if found is None:
                missing.append(f"{module}:{path}")
                continue
            owner, attr = found
            raw = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)
            if isinstance(raw, (staticmethod, classmethod)):
                setattr(owner, attr, type(raw)(wrap(trace, f"{path}", raw.__func__)))
            else:
                setattr(owner, attr, wrap(trace, f"{path}", getattr(owner, attr)))
    return missing


def _in_runner(trace: Trace) -> None:
    """Wrap the Luigi side once the runner has imported it (the worker never does)."""
    from orchestration import runner

    original = runner._Runner.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        from orchestration.pipeline import luigi_tasks  # noqa: F401

        still = install(trace, LUIGI_SPANS)
        if still:
            trace.emit("missing:" + ",".join(still), 0, 0)

    runner._Runner.__init__ = init  # type: ignore[method-assign]


# --- analysis -------------------------------------------------------------------------------
Event = tuple[int, str, float, float]


def load(path: Path, main: int) -> tuple[dict[int, int], dict[int, str], list[Event]]:
    """The trace: each pid's parent, each pid's role, the events."""
    parents, events = {}, []
    for line in path.read_text().splitlines():
        pid, ppid, name, start, end = line.split(" ")
        parents[int(pid)] = int(ppid)
        events.append((int(pid), name, float(start), float(end)))
    names = list(ROLES)

    def role(pid: int) -> str:
        depth = 0
        while pid != main and depth < len(names):
            pid, depth = parents.get(pid, main), depth + 1
        return names[depth] if depth < len(names) else "?"

    return parents, {pid: role(pid) for pid in parents}, events


def report(path: Path, main: int, m: int, wall: float) -> None:
    parents, roles, events = load(path, main)
    steps = m * 3
    totals: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for pid, name, start, end in events:
        if not name.startswith("missing:") and end > start:
            totals[(roles.get(pid, "?"), name)].append(end - start)
    print(f"\n{m} experiments x 3 steps in {wall:.2f} s = {wall / steps * 1000:.2f} ms a step."
          "\nPer step: time inside each function (a nested call counts in its callers too), "
          "calls per step, median call:")
    for role in ROLES:
        rows = sorted(((sum(v), k[1], v) for k, v in totals.items() if k[0] == role),
                      reverse=True)
        if rows:
            print(f"-- {role}")
        for total, name, values in rows:
            print(f"  {name:<42} {total / steps * 1000:8.3f} ms {len(values) / steps:6.2f}"
                  f" {statistics.median(values) * 1000:8.3f} ms")
    print("-- one attempt, across the code host and the step's process (medians)")
    for name, values in attempt_segments(events, parents, roles).items():
        print(f"  {name:<52} {statistics.median(values) * 1000:8.3f} ms")
    print("-- between two experiments on the slot (one worker), medians from the moment before")
    for name, values in gap_timeline(events, roles).items():
        print(f"  {name:<52} {statistics.median(values) * 1000:8.3f} ms")
    for _, name, _, _ in events:
        if name.startswith("missing:"):
            print("not found in the runner:", name[8:])
            break


def gap_timeline(events: list[Event], roles: dict[int, str]) -> dict[str, list[float]]:
    """From an experiment's last marker to the next one's first step process, in the order
    it happens (runner, worker, runner): each moment's median distance from the one before."""
    def spans(role: str, name: str) -> list[tuple[float, float]]:
        return sorted((s, e) for pid, n, s, e in events if n == name and roles.get(pid) == role)

    runs = spans("runner", "_Runner.run")
    moments = [  # (label, role, name, start or end of the call)
        ("runner: last marker written", "runner", "step_completed", 1),
        ("runner: Luigi's run returns", "runner", "Worker.run", 1),
        ("runner: code host let go", "runner", "HostPool.release", 1),
        ("runner: experiment completed (record, move)", "runner", "complete", 1),
        ("runner: told the worker", "runner", "_Runner._send", 1),
        ("worker: woken, reads the runner's message", "worker", "Worker._read_events", 0),
        ("worker: end handled (record, notifier, search)", "worker", "Worker._ended", 1),
        ("worker: next claimed (rename, owner, record)", "worker", "claim", 1),
        ("runner: next run begins", "runner", "_Runner.run", 0),
        ("runner: its plan loaded", "runner", "Plan.load", 1),
        ("runner: its steps added to Luigi", "runner", "Worker.add", 1),
        ("runner: first step's run() called by Luigi", "runner", "Step.run", 0),
        ("runner: code host started (zygote fork, import)", "runner", "CodeHost.start", 1),
        ("runner: first attempt asked of the host", "runner", "CodeHost.call", 0),
        ("step: its process runs user code", "step", "_target()", 0)]
    found = {(role, name): [span[edge] for span in spans(role, name)]
             for _, role, name, edge in moments}
    out: dict[str, list[float]] = collections.defaultdict(list)
    for (_, end), (_, nxt_end) in zip(runs, runs[1:]):
        ended = [t for t in found[moments[0][1:3]] if t <= end]
        if not ended:
            continue
        previous = max(ended)  # the ending run's last marker; then each moment in turn
        for label, role, name, _ in moments[1:]:
            later = [t for t in found[(role, name)] if previous <= t <= nxt_end]
            if not later:
                continue
            out[label].append(min(later) - previous)
            previous = min(later)
    return {label: out[label] for label, *_ in moments if out.get(label)}


def attempt_segments(events: list[Event], parents: dict[int, int], roles: dict[int, str]
                     ) -> dict[str, list[float]]:
    """Each step process's life: the host's fork, the child's setup, the user code, its
    report and exit, and the moment the host sees the exit."""
    mine: dict[int, dict[str, list[tuple[float, float]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for pid, name, start, end in events:
        mine[pid][name].append((start, end))
    out: dict[str, list[float]] = collections.defaultdict(list)
    for pid, names in mine.items():
        if roles.get(pid) != "step" or not names.get("_target()") or not names.get("fork"):
            continue
        asked, resumed = names["fork"][0]
        target = names["_target()"][0]
        host = mine[parents[pid]]
        parent_fork = [e for s, e in host.get("fork", []) if s == asked]
        watch = [w for w in host.get("_watch", []) if w[0] <= resumed <= w[1]]
        if parent_fork:
            out["host: fork() returns in the parent"].append(parent_fork[0] - asked)
        out["step: fork() asked -> child runs"].append(resumed - asked)
        if names.get("_child"):
            out["step: child runs -> _child body"].append(names["_child"][0][0] - resumed)
            out["step: _child body -> user code (setup)"].append(
                target[0] - names["_child"][0][0])
        out["step: user code (construct, prepare, run)"].append(target[1] - target[0])
        if names.get("_exit"):
            exited = names["_exit"][0][0]
            out["step: user code returned -> os._exit (report)"].append(exited - target[1])
            if watch:
                out["host: os._exit -> the host's watch ends (exit, reap)"].append(
                    watch[0][1] - exited)
        attempt = [a for a in host.get("run_attempt", []) if a[0] <= asked <= a[1]]
        if attempt:
            out["host: run_attempt, whole"].append(attempt[0][1] - attempt[0][0])
            out["host: run_attempt start -> fork()"].append(asked - attempt[0][0])
            if watch:
                out["host: watch end -> run_attempt returns"].append(
                    attempt[0][1] - watch[0][1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the trace in this file")
    parser.add_argument("--without", nargs="+", default=[], choices=sorted(WITHOUT),
                        help="what-if runs (not safe to use): without cgroup boxes (the "
                             "subreaper fallback), without fsyncs")
    parser.add_argument("--luigi-imported", action="store_true",
                        help="import Luigi into the worker process first, as a caller that "
                             "uses Luigi itself would (its runners and zygotes inherit it)")
    args = parser.parse_args()
    for name in args.without:
        WITHOUT[name]()
    if args.luigi_imported:
        import luigi  # noqa: F401
    with tempfile.TemporaryDirectory(prefix="jo-breakdown-") as tmp:
        root = Path(tmp)
        trace_path = args.keep or root / "trace.txt"
        trace_path.write_text("")
        ws = Workspace(root / "ws")
        ws.init()
        code = code_folder(root)
        for i in range(args.m):
            write_config(ws, f"e{i}", code, ["Noop"] * 3)
        ready_all(ws)
        trace = Trace(str(trace_path))
        missing = install(trace, SPANS, POINTS)
        _in_runner(trace)
        start = time.monotonic()
        Worker(ws, workers=args.workers, exit_when_empty=True, poll=0.05).run()
        wall = time.monotonic() - start
        if missing:
            print("not found:", ", ".join(missing))
        report(trace_path, os.getpid(), args.m, wall)


if __name__ == "__main__":
    sys.exit(main())
