"""Run Luigi's central scheduler (luigid) in the foreground, its state and logs under
Misc/luigid. Workers on this and other hosts use it with ``--scheduler-url`` (or ``[core]
default-scheduler-url`` in luigi.cfg); its web page shows every experiment's progress."""
from __future__ import annotations

import argparse
import socket
import sys

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "run the Luigi central scheduler (luigid) for this workspace"


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
    shown = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}"
    paths = SchedulerPaths.of(ws)
    reporter.line(f"luigid on {url} (web view: {url}/); workers: `job-orchestration worker "
                  f"--scheduler-url {url}`; state and logs in {paths.folder}; Ctrl-C stops it")
    sys.stdout.flush()  # before luigid takes over the process
    serve(ws, args.host, args.port)
    return 0
