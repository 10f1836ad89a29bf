"""Claim queued configs and run them through Luigi until the queue is empty (with
``--exit-when-empty``) or until stopped (SIGTERM or Ctrl-C release unfinished claims)."""
from __future__ import annotations

import argparse
import signal

from ..exceptions import ExperimentFailed, OrchestrationError
from ..reporter import Reporter
from ..workspace import Workspace

HELP = "run queued experiments"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="experiments run at once (default 1)")
    parser.add_argument("--scheduler-url", metavar="URL", default=None,
                        help="a running luigid, e.g. http://127.0.0.1:8082 (default: the "
                             "[core] default-scheduler-url of luigi.cfg if set, else a local "
                             "scheduler)")
    parser.add_argument("--exit-when-empty", action="store_true",
                        help="stop when the queue is empty instead of waiting for more")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                        help="how often to look for new configs and beat the heartbeat of "
                             "its claims (default 2)")
    parser.add_argument("--lease", type=float, default=300.0, metavar="SECONDS",
                        help="workers on other hosts take this worker's experiments back when "
                             "its heartbeat is older than this (default 300; on one host a "
                             "dead worker is seen at once by its pid). Keep it well above "
                             "--poll plus the clock difference between hosts")


def scheduler_url(explicit: str | None) -> str | None:
    """``--scheduler-url``, else Luigi's own configuration, else None (local scheduler)."""
    if explicit:
        return explicit
    import luigi.configuration

    config = luigi.configuration.get_config()
    for key in ("default-scheduler-url", "default_scheduler_url"):
        value = config.get("core", key, None)
        if value:
            return value
    return None


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..worker import Worker

    if args.workers < 1:
        raise OrchestrationError("--workers must be at least 1")
    if not 0 < args.poll * 2 < args.lease:
        raise OrchestrationError(f"--lease ({args.lease:g} s) must be more than twice --poll "
                                 f"({args.poll:g} s), the heartbeat interval, and --poll "
                                 "positive")
    ws = Workspace.from_setting(args.workspace)
    worker = Worker(ws, workers=args.workers, scheduler_url=scheduler_url(args.scheduler_url),
                    exit_when_empty=args.exit_when_empty, poll=args.poll, lease=args.lease,
                    on_event=reporter.line)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    report = worker.run()
    reporter.line(f"{len(report.completed)} completed, {len(report.failed)} failed"
                  + (f", {len(report.released)} put back in the queue" if report.released
                     else ""))
    for error in report.errors:
        reporter.error(error)
    if report.errors:
        return 2
    if report.failed:
        raise ExperimentFailed(f"{len(report.failed)} experiment(s) failed: "
                               f"{', '.join(report.failed)} (see ConfigsFailed/*.error.txt)")
    return 0
