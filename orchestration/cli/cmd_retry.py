"""Put a failed experiment back in the queue (re-validated); finished steps are skipped and
outputs and logs are kept."""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..workspace import Workspace
from .cmd_ready import report_outcomes

HELP = "queue a failed experiment again"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="failed experiment(s)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..retry import retry

    ws = Workspace.from_setting(args.workspace)
    return report_outcomes([retry(ws, name) for name in args.names], reporter)
