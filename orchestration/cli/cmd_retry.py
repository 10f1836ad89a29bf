"""Put failed experiments back in the queue, re-validated: finished steps are skipped,
outputs and logs are kept, and the code is the code they were readied with.

examples: job-orchestration retry lr-0.1
          job-orchestration retry --failed --where seed=1"""
from __future__ import annotations

import argparse

from ..exceptions import UsageError
from ..reporter import Reporter
from ..workspace import Workspace
from .cmd_ready import report_outcomes
from .exit_codes import ExitCode

HELP = "queue failed experiments again"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="failed experiment(s)")
    parser.add_argument("--failed", action="store_true", help="every failed experiment")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="with --failed: only those whose config has this value "
                             "(as for `results --where`)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.results import parse_where, results
    from ..retry import retry
    from ..states import ExperimentState

    ws = Workspace.from_setting(args.workspace)
    if args.failed == bool(args.names):
        raise UsageError("name the experiments to retry, or give --failed (not both)")
    if args.where and not args.failed:
        raise UsageError("--where selects among --failed experiments; give --failed too")
    names = args.names
    if args.failed:
        failed = {p.stem for p in ws.config_files(ExperimentState.FAILED)}
        if args.where:
            names = [row["name"] for row in results(ws, parse_where(args.where))
                     if row["name"] in failed]
        else:
            names = sorted(failed)
        if not names:
            reporter.line("no failed experiments" + (" match" if args.where else ""))
            return ExitCode.NOTHING_TO_DO
    return report_outcomes([retry(ws, name) for name in names], reporter)
