"""What adaptive search costs a worker: the hooks when there is nothing to do, and one trial.

  (a) ``experiment_ended`` for an experiment that is not a trial (every experiment pays it)
  (b) ``reconcile`` with S idle searches of T finished trials each (every few polls)
  (c) one trial's turn, in-process: tell its value, ask the next trial, ready it
  (d) the same in the forked child the worker uses (what a worker waits for per trial)

Run from the repository root (needs the `search` extra):

    python benchmarks/search_hooks.py [--searches 20] [--trials 50] [--turns 20]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from orchestration.adaptive import hooks
from orchestration.adaptive.advance import advance
from orchestration.adaptive.start import search
from orchestration.adaptive.store import SearchFolder
from orchestration.claims import finish
from orchestration.records import run_record
from orchestration.states import ExperimentState
from orchestration.workspace import Workspace

TASKS = Path(__file__).parent.parent / "tests" / "fixtures" / "search" / "Tasks.py"


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def make_project(root: Path) -> Path:
    (root / "tasks").mkdir(parents=True)
    shutil.copy(TASKS, root / "tasks" / "Tasks.py")
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root / "tasks"


def spec_file(folder: Path, tasks: Path, name: str, trials: int, parallel: int) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "githubRepository": "https://github.com/me/project", "pathToTasks": str(tasks),
        "outputDir": name, "tasks": [{"id": "evaluate", "method": "Evaluate"}],
        "search": {"objective": "evaluate.value", "trials": trials, "parallel": parallel,
                   "seed": 1, "params": {"x": {"type": "float", "low": -5.0, "high": 5.0},
                                         "y": {"type": "float", "low": -5.0, "high": 5.0}}}}))
    return path


def complete(ws: Workspace, name: str) -> None:
    """Finish a queued trial as a worker would, without running it: a result, the move."""
    def change(record: dict) -> None:
        record["state"] = "completed"
        record["tasks"]["evaluate"].update(state="completed", result={"value": 1.0})
    run_record.update(ws.output_dir(name), change, durable=False)
    path = ws.folder(ExperimentState.QUEUED) / f"{name}.yaml"
    finish(ws, ws.move(path, ExperimentState.RUNNING), ExperimentState.COMPLETED)


def turns(ws: Workspace, folder: SearchFolder, n: int, isolated: bool) -> list[float]:
    times = []
    for _ in range(n):
        queued = sorted(p.stem for p in ws.config_files(ExperimentState.QUEUED)
                        if p.stem.startswith(folder.name))
        complete(ws, queued[0])
        start = time.perf_counter()
        if isolated:
            hooks.experiment_ended(ws, queued[0])
        else:
            advance(folder)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        root = Path(tmp)
        tasks = make_project(root / "project")
        ws = Workspace(root / "ws")
        ws.init()
        a = per_call(lambda: hooks.experiment_ended(ws, "plain-experiment-t0001"), 20000)
        for i in range(args.searches):  # idle searches: every trial asked and told
            search(spec_file(root, tasks, f"idle{i}", args.trials, args.trials), ready=True,
                   workspace=ws)
            for name in [p.stem for p in ws.config_files(ExperimentState.QUEUED)]:
                complete(ws, name)
            advance(SearchFolder(ws, f"idle{i}"))
        b = per_call(lambda: hooks.reconcile(ws), 50)
        search(spec_file(root, tasks, "live", 4 + 2 * args.turns, 2), ready=True, workspace=ws)
        c = turns(ws, SearchFolder(ws, "live"), args.turns, isolated=False)
        d = turns(ws, SearchFolder(ws, "live"), args.turns, isolated=True)
    print(f"(a) experiment_ended, not a trial:            {a * 1e6:8.1f} us")
    print(f"(b) reconcile, {args.searches} idle searches x {args.trials} trials: "
          f"{b * 1e3:8.2f} ms")
    print(f"(c) one trial's tell+ask+ready, in-process:   {statistics.median(c) * 1e3:8.1f} ms "
          f"(median of {len(c)})")
    print(f"(d) the same in the worker's forked child:    {statistics.median(d) * 1e3:8.1f} ms "
          f"(median of {len(d)})")


if __name__ == "__main__":
    main()
