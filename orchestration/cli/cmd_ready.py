"""Validate every config in ConfigSources; queue the good ones, reject the bad ones with a
reason file in ConfigsFailed. A file copied in the last 2 s is judged once it has settled.

example: cp sweep/*.yaml $JOB_ORCHESTRATION_WORKSPACE/ConfigSources/ && job-orchestration ready"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any, Iterator

from ..reporter import Reporter
from ..workspace import Workspace
from .exit_codes import ExitCode

HELP = "validate configs in ConfigSources and queue them (alias: readyConfigs)"
LIST_UP_TO = 10  # more outcomes than this: a summary and the rejections, unless --verbose


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="one line per config, also for the ones queued")


def report_outcomes(outcomes: list, reporter: Reporter, verbose: bool = False,
                    warnings: bool = True) -> int:
    """Print what ``ready`` did: up to ``LIST_UP_TO`` configs (or ``verbose``) a line each,
    else a summary; every rejection and each distinct warning once. Exit code 2 when any
    config was rejected or left in ConfigSources unjudged."""
    rejected = skipped = 0
    listed = verbose or len(outcomes) <= LIST_UP_TO
    shown: set[str] = set()
    for outcome in outcomes:
        if outcome.queued:
            if listed:
                reporter.line(outcome.message)
        elif outcome.skipped:
            skipped += 1
            reporter.warn(outcome.message)
        else:
            rejected += 1
            reporter.error(outcome.message)
        for warning in outcome.warnings if warnings else ():
            if warning not in shown:  # the same remote warning for 500 configs: once
                shown.add(warning)
                reporter.warn(f"{outcome.name}: {warning}")
    searches = sum(o.search for o in outcomes)  # their trials are outcomes of their own
    queued = sum(o.queued and not o.search for o in outcomes)
    reporter.line(f"{queued} queued, {rejected} rejected"
                  + (f", {skipped} left in ConfigSources" if skipped else "")
                  + (f", {searches} search{'es' if searches > 1 else ''} started"
                     if searches else ""))
    return 2 if rejected or skipped else 0


@contextmanager
def progress_bar(reporter: Reporter, enabled: bool) -> Iterator[Any]:
    """A ``rich`` progress bar on a terminal (``ready``/``submit`` of hundreds of configs);
    yields a ``(what, done, total)`` callback, or None."""
    if not enabled or not reporter.out.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=reporter.out, transient=True) as bar:
        task = bar.add_task("ready", total=None)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        yield update


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..ready import ready_all
    from ..states import ExperimentState

    ws = Workspace.from_setting(args.workspace)
    if not ws.config_files(ExperimentState.NEW):
        reporter.line(f"nothing to ready: {ws.folder(ExperimentState.NEW)} holds no .yaml "
                      "or .yml files")
        return ExitCode.NOTHING_TO_DO
    with progress_bar(reporter, enabled=True) as bar:
        outcomes = ready_all(ws, progress=bar)
    return report_outcomes(outcomes, reporter, args.verbose)
