"""How ``ready`` and ``worker`` scale with the number of steps of ONE experiment.

An experiment of N trivial steps (issue 16: 1,000 steps took 17 s, 4,682 took 560 s), in two
shapes: a ``chain`` (each step requires the one before) and a ``wide`` graph (one root, N-2
steps that require it, one sink that requires them all). Each size runs the installed CLI as
a user does (``ready``, then ``worker --exit-when-empty``) in a fresh workspace, and prints
the seconds of each and per step; a cost per step that grows with N is the superlinear term.
Standard library timing only:

    python benchmarks/many_steps.py                          # N = 1000, 3000, 10000
    python benchmarks/many_steps.py --sizes 1000 3000 --shapes chain --timeout 600
    python benchmarks/many_steps.py --sizes 3000 --keep /tmp/ws   # profile it afterwards:
    py-spy record -o worker.svg -- job-orchestration worker --exit-when-empty --workspace ...
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TASKS_PY = '''
from orchestration import TaskBase


class Noop(TaskBase):
    def run(self):
        return None
'''


def tasks(shape: str, n: int) -> list[dict]:
    if shape == "chain":  # requires defaults to the previous task
        return [{"id": f"t{i}", "method": "Noop"} for i in range(n)]
    middle = [f"t{i}" for i in range(1, n - 1)]
    return ([{"id": "t0", "method": "Noop", "requires": []}]
            + [{"id": t, "method": "Noop", "requires": ["t0"]} for t in middle]
            + [{"id": f"t{n - 1}", "method": "Noop", "requires": middle}])


def workspace(root: Path, shape: str, n: int) -> Path:
    """A fresh workspace holding one config of ``n`` steps of ``shape``, not yet readied."""
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "Tasks.py").write_text(TASKS_PY)
    ws = root / f"ws-{shape}-{n}"
    subprocess.run([sys.executable, "-m", "orchestration", "init", "--workspace", str(ws)],
                   check=True, capture_output=True)
    config = ws / "ConfigSources" / "big.yaml"
    config.write_text(yaml.safe_dump({"githubRepository": "https://example.com/x",
                                      "pathToTasks": str(code), "outputDir": "big",
                                      "tasks": tasks(shape, n)}, sort_keys=False))
    past = time.time() - 10  # settled: ready judges it at once
    os.utime(config, (past, past))
    return ws


def timed(ws: Path, *args: str, timeout: float) -> float | None:
    """Seconds the command took; None when it passed ``timeout`` (it is killed)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "orchestration", *args, "--workspace",
                               str(ws)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--shapes", nargs="+", default=["chain", "wide"],
                        choices=["chain", "wide"])
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one command may take before it is killed (default 900)")
    parser.add_argument("--keep", type=Path, help="build the workspaces here and keep them")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "many_steps.json")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="many-steps-"))
    rows = []
    print(f"{'shape':6} {'N':>6} {'ready s':>8} {'worker s':>9} {'worker ms/step':>15}")
    try:
        for shape in args.shapes:
            for n in args.sizes:
                ws = workspace(root, shape, n)
                ready = timed(ws, "ready", timeout=args.timeout)
                worker = timed(ws, "worker", "--exit-when-empty", timeout=args.timeout)
                per_step = None if worker is None else worker / n * 1000
                rows.append({"shape": shape, "n": n, "ready_s": ready, "worker_s": worker,
                             "worker_ms_per_step": per_step})
                show = lambda v, f: "timeout" if v is None else format(v, f)  # noqa: E731
                print(f"{shape:6} {n:>6} {show(ready, '8.1f'):>8} {show(worker, '9.1f'):>9} "
                      f"{show(per_step, '15.1f'):>15}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
