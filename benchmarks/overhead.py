"""How much job-orchestration adds to what it orchestrates, and what it costs besides.

Measured side by side in one run (same machine, same load; the repeats are interleaved so
load falls on every contender alike), medians of ``--repeat`` runs:
  per step, for M experiments x 3 trivial steps (M in ``--sizes``):
    floor  a plain Python loop: construct each task, call run(), write a marker file
    luigi  one bare ``luigi.build`` of the same M chains with LocalTarget markers
    ours   ``ready`` + ``worker --exit-when-empty`` (library calls), every step isolated
           in its own process as always, 1 and 2 workers
    each in a fresh Python process timed around the calls (a worker process must be as lean
    as the CLI's: one that imported Luigi forks slower); overhead = (time - floor) / steps;
  the gap between experiments on one worker slot, from the markers and run records the run
  leaves (one experiment's last marker ``ended`` to the next one's first ``started``);
  the memory (VmRSS) of a ``worker`` CLI process waiting on an empty queue, and of it, its
  runner, zygote and code host while a step runs;
  ``status --json`` (view cache cold and warm) and ``results`` over ``--status-n``
  experiments; ``submit`` of ``--submit-n`` sweep points and again (all skipped), with a
  plain base and with ``${now:...}`` in it, through the library and the CLI.
It prints one table, each figure beside its goal (issue 13), met or missed, and the 1-minute
load average while it was measured, and writes it as JSON. Standard library only:

    python benchmarks/overhead.py                    # M = 100, 1000, 3000; 3 repeats
    python benchmarks/overhead.py --sizes 100 --repeat 1 --skip-luigi-above 1000
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from synthetic import ENV, clone_workspace, code_folder, write_config  # first: sys.path

from processes import ROLES, memory  # noqa: E402

from orchestration.ready import ready_all  # noqa: E402
from orchestration.records import run_record  # noqa: E402
from orchestration.states import ExperimentState  # noqa: E402
from orchestration.worker import Worker  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402

STEPS = 3


# --- (a) the floor ------------------------------------------------------------------------
class _Noop:
    def __init__(self, config: dict) -> None:
        self.config = config

    def run(self) -> None:
        return None


def floor(root: Path, m: int, workers: int) -> dict[str, Any]:
    start = time.perf_counter()
    for i in range(m):
        folder = root / f"e{i}"
        folder.mkdir(parents=True)
        for step in range(STEPS):
            _Noop({"i": i, "step": step}).run()
            (folder / f"s{step}.done").write_text("done")
    return {"seconds": time.perf_counter() - start}


# --- (b) bare Luigi -----------------------------------------------------------------------
def bare_luigi(root: Path, m: int, workers: int) -> dict[str, Any]:
    import luigi

    class BareStep(luigi.Task):  # defined here: only this child process imports Luigi
        root = luigi.Parameter()
        exp = luigi.IntParameter()
        step = luigi.IntParameter()

        def requires(self):  # noqa: ANN202
            return [BareStep(self.root, self.exp, self.step - 1)] if self.step else []

        def output(self) -> luigi.LocalTarget:
            return luigi.LocalTarget(f"{self.root}/e{self.exp}/s{self.step}.done")

        def run(self) -> None:
            with self.output().open("w") as fh:
                fh.write("done")

    start = time.perf_counter()
    ok = luigi.build([BareStep(str(root), i, STEPS - 1) for i in range(m)],
                     local_scheduler=True, workers=workers, log_level="WARNING")
    assert ok, "bare luigi.build failed"
    return {"seconds": time.perf_counter() - start}


# --- (c) ours -----------------------------------------------------------------------------
def ours(root: Path, m: int, workers: int) -> dict[str, Any]:
    ws = Workspace(root / "ws")
    ws.init()
    code = code_folder(root)
    for i in range(m):
        write_config(ws, f"e{i}", code, ["Noop"] * STEPS)
    start = time.perf_counter()
    outcomes = ready_all(ws)
    ready_s = time.perf_counter() - start
    assert all(o.queued for o in outcomes), [o.message for o in outcomes if not o.queued][:3]
    start = time.perf_counter()
    report = Worker(ws, workers=workers, exit_when_empty=True, poll=0.05).run()
    run_s = time.perf_counter() - start
    assert len(report.completed) == m, (len(report.completed), report.failed[:3])
    gaps = slot_gaps(ws, workers)
    import luigi  # the no-op rerun: after the run, which must not see Luigi imported

    from orchestration.pipeline import Experiment

    start = time.perf_counter()
    luigi.build([Experiment(str(ws.root), f"e{i}") for i in range(m)], local_scheduler=True,
                log_level="WARNING")
    return {"seconds": run_s, "ready_s": ready_s, "noop_rerun_s": time.perf_counter() - start,
            **gaps}


def slot_gaps(ws: Workspace, workers: int) -> dict[str, list[float]]:
    """Per experiment after the first on its slot: from the slot's last marker ``ended`` to
    the claim (the run record's attempt ``started``) and on to its first step ``started``.
    Slots are not recorded: each experiment goes to the slot freed most recently before its
    first step started (exact with one worker)."""
    runs = []
    for name, out in ws.registered().items():
        markers = [run_record.Marker.read(out, f"s{s}") for s in range(STEPS)]
        claimed = run_record.RunRecord.load(out).attempts[-1]["started"]
        runs.append((min(k.started for k in markers), max(k.ended for k in markers), claimed))
    runs.sort()
    free: list[float] = []  # when each slot's last experiment ended
    gap, to_claim, to_start = [], [], []
    for first, last, claimed in runs:
        ready = [i for i, ended in enumerate(free) if ended <= first]
        if ready:
            slot = max(ready, key=lambda i: free[i])
            gap.append(first - free[slot])
            to_claim.append(claimed - free[slot])
            to_start.append(first - claimed)
            free[slot] = last
        elif len(free) < workers:
            free.append(last)
        else:  # overlapping more than `workers` experiments: the clocks disagree
            free[min(range(len(free)), key=lambda i: free[i])] = last
    return {"gap": gap, "gap_to_claim": to_claim, "gap_claim_to_step": to_start}


KINDS: dict[str, Callable[[Path, int, int], dict[str, Any]]] = {
    "floor": floor, "luigi": bare_luigi, "ours": ours}


def in_child(kind: str, m: int, workers: int) -> dict[str, Any]:
    """Run ``kind`` in a fresh Python process (see the module doc); its figures."""
    with tempfile.TemporaryDirectory(prefix="jo-bench-") as tmp:
        proc = subprocess.run([sys.executable, __file__, "--child", kind, tmp, str(m),
                               str(workers)], env=ENV, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{kind} M={m} w={workers} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


# --- status, results ------------------------------------------------------------------------
def _cli(ws: Workspace | None, *args: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "orchestration",
               *(["--workspace", str(ws.root)] if ws else []), *args]
    start = time.perf_counter()
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True)
    if proc.returncode not in (0, 3):  # 3: nothing to do (a resubmit of duplicates)
        raise subprocess.CalledProcessError(proc.returncode, command, proc.stdout, proc.stderr)
    return time.perf_counter() - start, proc.stdout


def status_runs(ws: Workspace, n: int) -> dict[str, float]:
    """One cold ``status --json`` (no view cache), one warm, ``results`` (JSON and table)."""
    shutil.rmtree(ws.misc / "cache", ignore_errors=True)
    cold, out = _cli(ws, "status", "--json")
    assert len(json.loads(out)["experiments"]) == n
    warm, _ = _cli(ws, "status", "--json")
    results, out = _cli(ws, "results", "--format", "json")
    assert len(json.loads(out)) == n
    table, _ = _cli(ws, "results")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import orchestration.cli.main"], env=ENV,
                   check=True)
    return {"status_cold_s": cold, "status_warm_s": warm, "results_json_s": results,
            "results_table_s": table, "cli_startup_s": time.perf_counter() - start}


# --- submit ---------------------------------------------------------------------------------
def bench_submit(root: Path, n: int) -> dict:
    """``submit`` of an ``n``-point sweep into an empty workspace, then of the same sweep
    again (every point skipped as a duplicate), with a plain base and with ``${now:...}``
    in its outputDir; through the library (in-process, wall seconds) and through the CLI
    (Python start-up and imports included)."""
    from orchestration.submission import submit

    result: dict = {"n": n}
    for label, output_dir in (("plain", "runs/${seed}"), ("now", "runs/${now:%Y}/${seed}")):
        folder = root / f"submit-{label}"
        (folder / "tasks").mkdir(parents=True)
        base = folder / "base.yaml"
        base.write_text(yaml.safe_dump({
            "githubRepository": "https://github.com/me/project",
            "pathToTasks": str(folder / "tasks"), "outputDir": output_dir,
            "tasks": [{"id": f"s{i}", "method": "Noop"} for i in range(STEPS)],
            "seed": 0, "lr": 0.1, "model": {"depth": 3, "width": 128}}, sort_keys=False))
        ws = Workspace(folder / "ws")
        ws.init()
        for phase, expect in (("submit", n), ("resubmit", 0)):
            start = time.perf_counter()
            written = submit(base, sweep={"seed": list(range(n))}, workspace=ws)
            result[f"{phase}_{label}_s"] = time.perf_counter() - start
            assert len(written) == expect, (phase, label, len(written))
        cli = Workspace(folder / "ws-cli")
        cli.init()
        for phase in ("submit", "resubmit"):
            result[f"{phase}_{label}_cli_s"] = _cli(cli, "submit", str(base), "--sweep",
                                                    f"seed=range(0,{n})")[0]
        assert len(cli.config_files(ExperimentState.NEW)) == n
    return result


# --- figures and goals ----------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    value: float | None
    unit: str                 # ms, s, MB or x
    goal: float | None = None  # the value must be at most this (below it, with `strict`)
    strict: bool = False
    load: list[float] = field(default_factory=list)  # 1-minute load averages while measured
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.value < self.goal if self.strict else self.value <= self.goal


class Bench:
    """Runs the measurements, keeps every repeat's figures and the load around each."""

    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.runs: dict[str, list[dict[str, Any]]] = {}
        self.loads: dict[str, list[float]] = {}

    def measure(self, key: str, fn: Callable[..., dict[str, Any]], *args: Any) -> None:
        before = os.getloadavg()[0]
        value = fn(*args)
        self.runs.setdefault(key, []).append(value)
        self.loads.setdefault(key, []).extend([before, os.getloadavg()[0]])
        print(f"  {key}: {_brief(value)} (load {before:.2f})", flush=True)

    def median(self, key: str, item: str) -> float | None:
        values = [r[item] for r in self.runs.get(key, []) if r.get(item) is not None]
        return statistics.median(values) if values else None

    def median_of(self, key: str, item: str, stat: Callable[[list[float]], float]
                  ) -> float | None:
        values = [stat(r[item]) for r in self.runs.get(key, []) if r.get(item)]
        return statistics.median(values) if values else None

    def load(self, *keys: str) -> list[float]:
        loads = [x for k in keys for x in self.loads.get(k, [])]
        return [round(min(loads), 2), round(max(loads), 2)] if loads else []


def _brief(value: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in value.items() if isinstance(v, float))


def _summary(value: Any) -> Any:
    """Lists of gaps as their count, median and p90 (the JSON stays small)."""
    if isinstance(value, list):
        return {"n": len(value), "median": statistics.median(value) if value else None,
                "p90": p90(value) if value else None}
    return value


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def size_figures(b: Bench, m: int, workers: list[int]) -> list[Figure]:
    steps, fl = m * STEPS, b.median(f"floor M={m}", "seconds")
    figs = [Figure(f"M={m} floor (plain loop)", fl / steps * 1000, "ms",
                   load=b.load(f"floor M={m}"))]
    for w in workers:
        for kind, label in (("luigi", "bare luigi.build"), ("ours", "ours")):
            key = f"{kind} M={m} w={w}"
            total = b.median(key, "seconds")
            per = total / steps * 1000 if total is not None else None
            figs.append(Figure(f"M={m} {label}, {w} worker(s): per step", per, "ms",
                               load=b.load(key)))
            over = (total - fl) / steps * 1000 if total is not None else None
            figs.append(Figure(f"M={m} {label}, {w} worker(s): overhead per step", over,
                               "ms", 5.0 if (kind, w) == ("ours", 1) else None,
                               load=b.load(key, f"floor M={m}")))
    ours1, luigi1 = b.median(f"ours M={m} w=1", "seconds"), b.median(f"luigi M={m} w=1",
                                                                       "seconds")
    figs.append(Figure(f"M={m} ours / bare luigi.build, 1 worker",
                       ours1 / luigi1 if ours1 and luigi1 else None, "x",
                       1.5 if m < 1000 else 1.0, strict=m >= 1000,
                       load=b.load(f"ours M={m} w=1", f"luigi M={m} w=1")))
    for w in workers:
        key = f"ours M={m} w={w}"
        for item, stat, label, goal in (
                ("gap", statistics.median, "gap between experiments, median", 10.0),
                ("gap", p90, "gap between experiments, p90", None),
                ("gap_to_claim", statistics.median, "  of it: last marker to claim, median",
                 None),
                ("gap_claim_to_step", statistics.median,
                 "  of it: claim to first step, median", None)):
            value = b.median_of(key, item, stat)
            figs.append(Figure(f"M={m} {label}, {w} worker(s)",
                               value * 1000 if value is not None else None, "ms", goal,
                               load=b.load(key)))
    figs.append(Figure(f"M={m} ready per config", b.median(f"ours M={m} w=1", "ready_s")
                       / m * 1000, "ms", load=b.load(f"ours M={m} w=1")))
    figs.append(Figure(f"M={m} no-op rerun through Luigi", b.median(f"ours M={m} w=1",
                       "noop_rerun_s"), "s", load=b.load(f"ours M={m} w=1")))
    return figs


def other_figures(b: Bench, n: int, submit_n: int) -> list[Figure]:
    """The goals hold for the issue's sizes: 10,000 experiments, 1000 points."""
    figs = []
    read_goal, submit_goal = (1.0 if n == 10_000 else None), submit_n == 1000
    mem = b.runs["memory"]
    for name, get, goal in (
            ("RSS: worker CLI, idle (empty queue)", lambda r: r["idle_worker_rss"], 60.0),
            ("RSS: worker + runner + zygote + code host, a step running",
             lambda r: r["busy_worker_runner_host_rss"], None),
            ("PSS: worker + runner + zygote + code host, a step running",
             lambda r: r["busy_worker_runner_host_pss"], None)):
        figs.append(Figure(name, statistics.median(get(r) for r in mem), "MB", goal,
                           load=b.load("memory")))
    for role in ROLES:
        values = [r["busy"][role]["rss"] for r in mem if role in r["busy"]]
        label = (f"RSS:   of it: {role}" if role != "step" else
                 "RSS: the running step's process (not in the sum)")
        figs.append(Figure(label, statistics.median(values) if values else None, "MB",
                           load=b.load("memory")))
    figs.append(Figure("RSS: worker + idle runner + zygote + kept code host, after a run",
                       statistics.median(sum(p["rss"] for p in r["after_run"].values())
                                         for r in mem), "MB",
                       load=b.load("memory")))
    for item, label, goal in (
            ("status_cold_s", f"status --json over {n:,} experiments, view cache cold",
             read_goal),
            ("status_warm_s", f"status --json over {n:,} experiments, view cache warm",
             read_goal),
            ("results_json_s", f"results --format json over {n:,} experiments", read_goal),
            ("results_table_s", f"results (table) over {n:,} experiments", read_goal),
            ("cli_startup_s", "CLI: Python start-up and imports (in each CLI figure)", None)):
        figs.append(Figure(label, b.median("status", item), "s", goal, load=b.load("status")))
    for label, what in (("plain", "plain base"), ("now", "${now:...} in the base")):
        for phase, goal in (("submit", 1.0), ("resubmit", 0.5)):
            again = " again (all skipped)" if phase == "resubmit" else ""
            for how, suffix in (("library", ""), ("CLI", "_cli")):
                figs.append(Figure(f"submit {submit_n:,} points{again}, {what}, {how}",
                                   b.median("submit", f"{phase}_{label}{suffix}_s"), "s",
                                   goal if submit_goal else None, load=b.load("submit")))
    return figs


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return {"ms": f"{value:.2f} ms", "s": f"{value:.2f} s", "MB": f"{value:.1f} MB",
            "x": f"{value:.2f}x"}[unit]


def print_table(figs: list[Figure], repeat: int) -> None:
    print(f"\nmedians of {repeat} run(s); load: 1-minute load average while measured "
          f"(min-max), {os.cpu_count()} CPUs")
    width = max(len(f.name) for f in figs)
    print(f"{'figure':<{width}} | {'value':>10} | {'goal':>11} | {'met':<6} | load")
    for f in figs:
        goal = "-" if f.goal is None else ("< " if f.strict else "<= ") + _cell(f.goal, f.unit)
        met = {None: "", True: "met", False: "MISSED"}[f.met]
        load = "-".join(f"{x:.1f}" for x in f.load) if f.load else ""
        print(f"{f.name:<{width}} | {_cell(f.value, f.unit):>10} | {goal:>11} | {met:<6} | "
              f"{load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-luigi-above", type=int, default=10**9,
                        help="skip bare Luigi for M above this (it is quadratic)")
    parser.add_argument("--status-n", type=int, default=10_000)
    parser.add_argument("--submit-n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                        / "overhead.json")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "DIR", "M", "WORKERS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, m, w = args.child
        logging.getLogger("luigi-interface").setLevel(logging.WARNING)
        print(json.dumps(KINDS[kind](Path(folder), int(m), int(w))))
        return
    started, b = time.time(), Bench(args.repeat)
    workers = sorted(set(args.workers) | {1})
    for m in args.sizes:
        print(f"M={m}", flush=True)
        for _ in range(args.repeat):
            b.measure(f"floor M={m}", in_child, "floor", m, 1)
            for w in workers:
                if m <= args.skip_luigi_above:
                    b.measure(f"luigi M={m} w={w}", in_child, "luigi", m, w)
                b.measure(f"ours M={m} w={w}", in_child, "ours", m, w)
    print("memory, status, results, submit", flush=True)
    with tempfile.TemporaryDirectory(prefix="jo-bench-") as tmp:
        ws = clone_workspace(Path(tmp) / "status", args.status_n)
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="jo-bench-") as mem:
                b.measure("memory", memory, Path(mem))
            b.measure("status", status_runs, ws, args.status_n)
            with tempfile.TemporaryDirectory(prefix="jo-bench-") as sub:
                b.measure("submit", bench_submit, Path(sub), args.submit_n)
    figs = [f for m in args.sizes for f in size_figures(b, m, workers)]
    figs += other_figures(b, args.status_n, args.submit_n)
    print_table(figs, args.repeat)
    import luigi

    result = {"started": started, "seconds": time.time() - started, "repeat": args.repeat,
              "cpus": os.cpu_count(), "python": sys.version.split()[0],
              "luigi": getattr(luigi, "__version__", "?"),
              "figures": [{**asdict(f), "met": f.met} for f in figs],
              "runs": {key: [{k: _summary(v) for k, v in run.items()} for run in runs]
                       for key, runs in b.runs.items()},
              "loads": b.loads}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
