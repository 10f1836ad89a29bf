"""Remove completed or failed experiments from the workspace: their config, record and
outputs go to Misc/trash/ (nothing is deleted: empty the trash yourself). Queued or running
experiments are refused.

example: job-orchestration remove lr-0.1 --keep-output"""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "move finished or failed experiments to Misc/trash"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="experiment(s) to remove")
    parser.add_argument("--keep-output", action="store_true",
                        help="leave the output folder where it is (only the config and the "
                             "run record go to the trash)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..remove import remove

    ws = Workspace.from_setting(args.workspace)
    for name in args.names:
        trash = remove(ws, name, keep_output=args.keep_output)
        reporter.line(f"{name}: removed; moved to {trash}")
    return 0
