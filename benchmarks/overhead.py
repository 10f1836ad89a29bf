"""How much job-orchestration adds to the run time of what it orchestrates.

For M experiments x 3 trivial steps, measured side by side in one run (same machine, same
load):
  (a) floor   - a plain Python loop: construct each task, call run(), write a marker file
  (b) luigi   - one bare ``luigi.build`` of the same M chains with LocalTarget markers
  (c) ours    - ``ready`` + ``worker --exit-when-empty`` (in-process library calls), 1 and 2
                workers, each step isolated in its own process as always
plus a no-op rerun of every completed experiment through Luigi, ``ready`` per config, and
``status`` over 10,000 experiments. Prints a table (medians of ``--repeat`` runs) and writes
it as JSON. Standard library timing only:

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
from pathlib import Path

import luigi
import yaml

from orchestration.ready import ready_all
from orchestration.states import ExperimentState
from orchestration.workspace import Workspace
from orchestration.worker import Worker

STEPS = 3
TASKS_PY = '''
from orchestration import TaskBase

class Noop(TaskBase):
    def run(self):
        return None
'''


# --- (a) the floor ------------------------------------------------------------------------
class _Noop:
    def __init__(self, config: dict) -> None:
        self.config = config

    def run(self) -> None:
        return None


def floor(root: Path, m: int) -> float:
    start = time.perf_counter()
    for i in range(m):
        folder = root / f"e{i}"
        folder.mkdir(parents=True)
        for step in range(STEPS):
            _Noop({"i": i, "step": step}).run()
            (folder / f"s{step}.done").write_text("done")
    return time.perf_counter() - start


# --- (b) bare Luigi -----------------------------------------------------------------------
class BareStep(luigi.Task):
    root = luigi.Parameter()
    exp = luigi.IntParameter()
    step = luigi.IntParameter()

    def requires(self):  # noqa: ANN201
        return [BareStep(self.root, self.exp, self.step - 1)] if self.step else []

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/e{self.exp}/s{self.step}.done")

    def run(self) -> None:
        with self.output().open("w") as fh:
            fh.write("done")


def bare_luigi(root: Path, m: int, workers: int) -> float:
    start = time.perf_counter()
    luigi.build([BareStep(str(root), i, STEPS - 1) for i in range(m)], local_scheduler=True,
                workers=workers, log_level="WARNING", detailed_summary=True)
    return time.perf_counter() - start


# --- (c) ours -----------------------------------------------------------------------------
def make_workspace(root: Path, m: int) -> Workspace:
    code = root / "code"
    code.mkdir(parents=True)
    (code / "Tasks.py").write_text(TASKS_PY)
    ws = Workspace(root / "ws")
    ws.init()
    tasks = [{"id": f"s{s}", "method": "Noop"} for s in range(STEPS)]
    old = time.time() - 60
    for i in range(m):
        path = ws.folder(ExperimentState.NEW) / f"e{i}.yaml"
        path.write_text(yaml.safe_dump({"githubRepository": "https://example.com/x",
                                        "pathToTasks": str(code), "outputDir": f"e{i}",
                                        "tasks": tasks}))
        os.utime(path, (old, old))
    return ws


def ours(root: Path, m: int, workers: int) -> dict[str, float]:
    ws = make_workspace(root, m)
    start = time.perf_counter()
    outcomes = ready_all(ws)
    ready_s = time.perf_counter() - start
    assert all(o.queued for o in outcomes), [o.message for o in outcomes if not o.queued][:3]
    start = time.perf_counter()
    report = Worker(ws, workers=workers, exit_when_empty=True, poll=0.05).run()
    run_s = time.perf_counter() - start
    assert len(report.completed) == m, (len(report.completed), report.failed[:3])
    start = time.perf_counter()
    from orchestration.pipeline import Experiment

    names = [p.stem for p in ws.config_files(ExperimentState.COMPLETED)]
    luigi.build([Experiment(str(ws.root), n) for n in names], local_scheduler=True,
                log_level="WARNING")
    noop_s = time.perf_counter() - start
    return {"ready": ready_s, "run": run_s, "noop_rerun": noop_s}


def status_time(root: Path, n: int) -> dict[str, float]:
    """``status --json`` over ``n`` completed experiments, cloned from one real run."""
    ws = make_workspace(root, 1)
    ready_all(ws)
    Worker(ws, exit_when_empty=True, poll=0.05).run()
    src_out = ws.output_dir("e0")
    src_cfg = ws.folder(ExperimentState.COMPLETED) / "e0.yaml"
    for i in range(1, n):
        out = ws.output / f"e{i}"
        shutil.copytree(src_out, out)
        shutil.copy(src_cfg, ws.folder(ExperimentState.COMPLETED) / f"e{i}.yaml")
        ws.register(f"e{i}", out)
    env = {**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws.root)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orchestration", "status", "--json"],
                          env=env, capture_output=True, text=True, check=True)
    cli_s = time.perf_counter() - start
    assert len(json.loads(proc.stdout)["experiments"]) == n
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import orchestration.cli.main"], check=True)
    startup_s = time.perf_counter() - start
    return {"status_cli": cli_s, "python_startup_and_import": startup_s}


def _median_of(repeat: int, fn, *args) -> dict[str, float] | float:  # noqa: ANN001
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="jo-bench-") as tmp:
            runs.append(fn(Path(tmp), *args))
    if isinstance(runs[0], dict):
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-luigi-above", type=int, default=10**9,
                        help="skip bare Luigi for M above this (it is quadratic)")
    parser.add_argument("--status-n", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                        / "overhead.json")
    args = parser.parse_args()
    logging.getLogger("luigi-interface").setLevel(logging.WARNING)
    rows = []
    for m in args.sizes:
        steps = m * STEPS
        row: dict[str, float | int | None] = {"M": m, "steps": steps}
        row["floor_ms"] = _median_of(args.repeat, floor, m) / steps * 1000
        for w in (1, 2):
            luigi_s = (_median_of(args.repeat, bare_luigi, m, w)
                       if m <= args.skip_luigi_above else None)
            row[f"luigi_w{w}_ms"] = luigi_s / steps * 1000 if luigi_s else None
            res = _median_of(args.repeat, ours, m, w)
            row[f"ours_w{w}_ms"] = res["run"] / steps * 1000
            row[f"ours_w{w}_overhead_ms"] = row[f"ours_w{w}_ms"] - row["floor_ms"]
            if w == 1:
                row["ready_ms_per_config"] = res["ready"] / m * 1000
                row["noop_rerun_s"] = res["noop_rerun"]
        rows.append(row)
        print(_format_row(row), flush=True)
    status = _median_of(args.repeat, status_time, args.status_n)
    result = {"rows": rows, "status": {"n": args.status_n, **status},
              "repeat": args.repeat, "python": sys.version.split()[0],
              "luigi": luigi.__version__ if hasattr(luigi, "__version__") else "?"}
    _print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written: {args.out}")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _format_row(row: dict) -> str:
    return (f"M={row['M']}: floor {row['floor_ms']:.3f} ms/step, ours(1w) "
            f"{row['ours_w1_ms']:.2f} ms/step, luigi(1w) "
            f"{row['luigi_w1_ms'] if row['luigi_w1_ms'] is None else round(row['luigi_w1_ms'], 2)}"
            " ms/step")


def _print_table(result: dict) -> None:
    head = ("M", "floor", "luigi 1w", "luigi 2w", "ours 1w", "ours 2w", "overhead 1w",
            "luigi/ours 1w", "ours/floor 1w", "ready/cfg", "no-op rerun")
    print("\nper-step times in ms (medians of %d runs)" % result["repeat"])
    print(" | ".join(f"{h:>13}" for h in head))
    for r in result["rows"]:
        cells = (r["M"], f"{r['floor_ms']:.3f}",
                 "-" if r["luigi_w1_ms"] is None else f"{r['luigi_w1_ms']:.2f}",
                 "-" if r["luigi_w2_ms"] is None else f"{r['luigi_w2_ms']:.2f}",
                 f"{r['ours_w1_ms']:.2f}", f"{r['ours_w2_ms']:.2f}",
                 f"{r['ours_w1_overhead_ms']:.2f}", _ratio(r["luigi_w1_ms"], r["ours_w1_ms"]),
                 _ratio(r["ours_w1_ms"], r["floor_ms"]), f"{r['ready_ms_per_config']:.2f}",
                 f"{r['noop_rerun_s']:.2f} s")
        print(" | ".join(f"{c:>13}" for c in cells))
    s = result["status"]
    print(f"status --json over {s['n']} experiments: {s['status_cli']:.2f} s "
          f"(of which Python start-up and import {s['python_startup_and_import']:.2f} s)")


def bench_submit(root: Path, n: int) -> dict:
    """``submit`` of an ``n``-point sweep into an empty workspace, then of the same sweep
    again (every point skipped as a duplicate), with a plain base and with ``${now:...}``
    in its outputDir; in-process library calls, wall seconds. Also the CLI (Python start-up
    and imports included) for the plain base."""
    from orchestration.submission import submit

    result: dict = {"n": n}
    for label, output_dir in (("plain", "runs/${seed}"), ("now", "runs/${now:%Y}/${seed}")):
        folder = root / f"submit-{label}"
        ws = Workspace(folder / "ws")
        ws.init()
        (folder / "tasks").mkdir()
        base = folder / "base.yaml"
        base.write_text(yaml.safe_dump({
            "githubRepository": "https://github.com/me/project",
            "pathToTasks": str(folder / "tasks"), "outputDir": output_dir,
            "tasks": [{"id": f"s{i}", "method": "Noop"} for i in range(STEPS)],
            "seed": 0, "lr": 0.1, "model": {"depth": 3, "width": 128}}, sort_keys=False))
        for phase, expect in (("submit", n), ("resubmit", 0)):
            start = time.perf_counter()
            written = submit(base, sweep={"seed": list(range(n))}, workspace=ws)
            result[f"{phase}_{label}_s"] = time.perf_counter() - start
            assert len(written) == expect, (phase, label, len(written))
    folder = root / "submit-cli"
    Workspace(folder / "ws").init()
    base = root / "submit-plain" / "base.yaml"
    command = [sys.executable, "-m", "orchestration", "--workspace", str(folder / "ws"),
               "submit", str(base), "--sweep", f"seed=range(0,{n})"]
    for phase in ("submit", "resubmit"):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        result[f"{phase}_cli_s"] = time.perf_counter() - start
    return result


if __name__ == "__main__":
    main()
