"""Run the bundled demo end to end on the local scheduler: a three-step experiment (make
data, train by gradient descent, evaluate) for three learning rates.

example: job-orchestration demo --workspace /tmp/demo"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from ..exceptions import ExperimentFailed
from ..reporter import Reporter, duration
from ..states import StepState
from ..states import ExperimentState
from ..workspace import ENV_VAR, Workspace
from .cmd_ready import report_outcomes

HELP = "run the bundled demo end to end"
DEFAULT_WORKSPACE = "job-orchestration-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="experiments run at once (default 2)")


def demo_folder() -> Path:
    """demo/ of the source tree, or the copy installed as ``orchestration._demo``."""
    source = Path(__file__).resolve().parents[2] / "demo"
    if (source / "Tasks.py").is_file():
        return source
    from importlib.resources import files

    return Path(str(files("orchestration._demo")))


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..ready import ready_files
    from ..records.summary import all_experiments
    from ..worker import Worker

    ws = Workspace(args.workspace or os.environ.get(ENV_VAR) or DEFAULT_WORKSPACE)
    ws.init()
    reporter.line(f"demo workspace: {ws.root}")
    folder = demo_folder()
    fresh = []
    for config in sorted((folder / "configs").glob("*.yaml")):
        if ws.find(config.stem) is None:
            fresh.append(Path(shutil.copy(config, ws.folder(ExperimentState.NEW))))
    if fresh:  # the demo's code is not your repository: its provenance notes are no news
        report_outcomes(ready_files(ws, fresh, base=folder, whole=True), reporter,
                        warnings=False)
    report = Worker(ws, workers=args.workers, exit_when_empty=True, poll=0.5,
                    gpus=[], on_event=reporter.event).run()
    rows = [e for e in all_experiments(ws) if e["name"].startswith("lr-")]
    reporter.table(["experiment", "state", "steps", "time", "w", "b", "test mse"], [
        (e["name"], e["state"], f"{sum(t['state'] == StepState.COMPLETED for t in e['tasks'])}/"
         f"{len(e['tasks'])}", duration(sum(t["seconds"] or 0 for t in e["tasks"])),
         *_results(e)) for e in rows], title="demo: y = 3x + 2, fitted by gradient descent")
    reporter.line(f"outputs and logs: {ws.output / 'demo'}; try `job-orchestration show "
                  f"lr-0.05 --workspace {ws.root}`")
    if report.failed:
        raise ExperimentFailed(f"demo experiment(s) failed: {', '.join(report.failed)}")
    return 0


def _results(experiment: dict) -> tuple:
    by_id = {t["id"]: t.get("result") or {} for t in experiment["tasks"]}
    return (by_id.get("train", {}).get("w"), by_id.get("train", {}).get("b"),
            by_id.get("evaluate", {}).get("mse"))
