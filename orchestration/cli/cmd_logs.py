"""Print an experiment's step logs (all steps, in order, or one); ``--follow`` keeps
printing a running step's log until the step ends.

example: job-orchestration logs sweep-lr0.1-seed1 train --follow"""
from __future__ import annotations

import argparse
import sys
import time

from ..exceptions import UsageError, WorkspaceError
from ..reporter import Reporter
from ..states import StepState
from ..workspace import Workspace

HELP = "print step logs (--follow: as they grow)"
FOLLOW_SECONDS = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="experiment name")
    parser.add_argument("task_id", nargs="?", metavar="TASK", help="only this step")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing the step's log until it is no longer running")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records import run_record

    ws = Workspace.from_setting(args.workspace)
    record = run_record.load_named(ws, args.name)
    out = ws.output_dir(args.name)
    ids = list(record.tasks)
    if args.task_id is not None and args.task_id not in ids:
        raise WorkspaceError(f"{args.name} has no step {args.task_id!r}; its steps: "
                             f"{', '.join(ids)}")
    if args.follow:
        task_id = args.task_id or next(
            (t for t, step in record.tasks.items() if step.state is StepState.RUNNING), None)
        if task_id is None:
            raise UsageError(f"{args.name} has no running step to follow; name a step: "
                             f"{', '.join(ids)}")
        return _follow(ws, args.name, task_id)
    for task_id in [args.task_id] if args.task_id else ids:
        path = run_record.log_path(out, task_id)
        if args.task_id is None:
            reporter.line(f"==> {task_id} ({path}) <==", style="bold")
        if path.exists():
            sys.stdout.flush()
            sys.stdout.buffer.write(path.read_bytes())
            sys.stdout.flush()
        elif args.task_id is None:
            reporter.line("(not run yet)")
    return 0


def _follow(ws: Workspace, name: str, task_id: str) -> int:
    """Print the log from its start, then what is appended, until the step (or the whole
    experiment) is not running any more; then what it wrote last."""
    from ..records import run_record

    path = run_record.log_path(ws.output_dir(name), task_id)
    offset = 0
    while True:
        step = run_record.RunRecord.load(ws.output_dir(name)).tasks[task_id]
        running = step.state is StepState.RUNNING
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            offset += len(chunk)
        if not running:
            return 0
        time.sleep(FOLLOW_SECONDS)  # tailing a file: a poll interval, by design
