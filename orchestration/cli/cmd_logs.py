"""Print an experiment's task logs (all tasks, in order, or one)."""
from __future__ import annotations

import argparse
import sys

from ..exceptions import WorkspaceError
from ..reporter import Reporter
from ..workspace import Workspace

HELP = "print task logs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="experiment name")
    parser.add_argument("task_id", nargs="?", metavar="TASK_ID", help="only this task")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records import run_record

    ws = Workspace.from_setting(args.workspace)
    record = run_record.load_named(ws, args.name)
    out = ws.output_dir(args.name)
    ids = list(record["tasks"])
    if args.task_id is not None and args.task_id not in ids:
        raise WorkspaceError(f"{args.name} has no task {args.task_id!r}; its tasks: "
                             f"{', '.join(ids)}")
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
