"""Claim queued configs and run them through Luigi until the queue is empty (with
``--exit-when-empty``) or until stopped (SIGTERM or Ctrl-C put unfinished experiments back
in the queue, their finished steps kept).

example: job-orchestration worker --workers 2 --gpus 0,1 --exit-when-empty"""
from __future__ import annotations

import argparse
import shlex
import signal

from ..exceptions import ExperimentFailed, UsageError
from ..reporter import Reporter
from ..workspace import Workspace
from .exit_codes import ExitCode

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
    parser.add_argument("--gpus", metavar="IDS", default=None,
                        help="GPU ids this worker hands out, e.g. 0,1,2,3 (default: "
                             "$CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists); a "
                             "step with resources: {gpu: k} gets k of them")
    parser.add_argument("--slots-per-gpu", type=int, default=1, metavar="N",
                        help="steps that may share one GPU (default 1)")
    parser.add_argument("--notify", metavar="CMD", default=None,
                        help="run CMD (split like a shell would, but run without one) when "
                             "an experiment completes or fails; ORCH_NAME, ORCH_STATE, "
                             "ORCH_CAUSE, ORCH_OUTPUT_DIR, ORCH_RESULTS_JSON are in its "
                             "environment")
    parser.add_argument("--notify-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="kill a notifier that runs longer (default 60)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                        help="how often to look for new configs and beat the heartbeat of "
                             "its claims (default 2)")
    parser.add_argument("--lease", type=float, default=300.0, metavar="SECONDS",
                        help="workers on other hosts take this worker's experiments back when "
                             "its heartbeat is older than this (default 300; on one host a "
                             "dead worker is seen at once by its pid). Keep it well above "
                             "--poll plus the clock difference between hosts")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from .. import luigi_config
    from ..gpus import default_devices, parse_devices
    from ..records.rows import not_readied
    from ..states import ExperimentState
    from ..worker import Worker

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if not 0 < args.poll * 2 < args.lease:
        raise UsageError(f"--lease ({args.lease:g} s) must be more than twice --poll "
                         f"({args.poll:g} s), the heartbeat interval, and --poll positive")
    notify = shlex.split(args.notify) if args.notify else None
    gpus = parse_devices(args.gpus) if args.gpus is not None else default_devices()
    ws = Workspace.from_setting(args.workspace)

    worker = Worker(ws, workers=args.workers,
                    scheduler_url=args.scheduler_url or luigi_config.scheduler_url(),
                    exit_when_empty=args.exit_when_empty, poll=args.poll, lease=args.lease,
                    gpus=gpus, slots_per_gpu=args.slots_per_gpu, notify=notify,
                    notify_timeout=args.notify_timeout, on_event=reporter.event)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    report = worker.run()
    reporter.line(f"{len(report.completed)} completed, {len(report.failed)} failed"
                  + (f", {len(report.released)} put back in the queue" if report.released
                     else ""))
    waiting = len(ws.config_files(ExperimentState.NEW))
    if waiting:
        reporter.warn(not_readied(waiting))
    for error in report.errors:
        reporter.error(error)
    if report.errors:
        return 2
    if report.stopped_by == signal.SIGINT:
        return ExitCode.INTERRUPTED
    if report.failed:
        raise ExperimentFailed(f"{len(report.failed)} experiment(s) failed: "
                               f"{', '.join(report.failed)} (see ConfigsFailed/*.error.txt)")
    return 0
