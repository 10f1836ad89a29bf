"""Run Luigi's central scheduler (luigid) in the foreground, its state and logs under
Misc/luigid, with the experiments pages on the same port. Workers on this and other hosts
use it with ``--scheduler-url`` (or ``[core] default-scheduler-url`` in luigi.cfg);
/experiments shows every experiment's progress, / is Luigi's own visualiser. One workspace
has one scheduler: a second one is refused.

example: job-orchestration scheduler --port 8082"""
from __future__ import annotations

import argparse
import sys

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "run the Luigi central scheduler (luigid) and the experiments pages for this workspace"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else is "
                             "reachable by others and luigid has no authentication)")
    parser.add_argument("--port", type=int, default=8082, help="port (default 8082)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..scheduler import SchedulerPaths, exposure_warning, serve

    ws = Workspace.from_setting(args.workspace)
    warning = exposure_warning(args.host)
    if warning:
        reporter.warn(warning)

    def ready(url: str) -> None:
        reporter.line(f"luigid on {url}: experiments {url}/experiments, Luigi's view {url}/; "
                      f"workers: `job-orchestration worker --scheduler-url {url}`; state and "
                      f"logs in {SchedulerPaths.of(ws).folder}; Ctrl-C stops it")
        sys.stdout.flush()

    serve(ws, args.host, args.port, on_ready=ready)
    return 0
