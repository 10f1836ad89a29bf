"""Run an experiment again against the exact code it ran with (rebuilt in a git worktree under
Misc/worktrees/), into a new output folder; the original output is kept as it is.

example: job-orchestration rerun lr-0.1"""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "queue a copy of an experiment that runs its recorded code state"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the experiment to run again")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..rerun import rerun

    outcome = rerun(Workspace.from_setting(args.workspace), args.name)
    if not outcome.queued:
        reporter.error(outcome.message)
        return 2
    reporter.line(outcome.name)  # first line alone, for scripts: name=$(... rerun x | head -1)
    reporter.line(f"  {outcome.message}")
    for warning in outcome.warnings:
        reporter.warn(f"{outcome.name}: {warning}")
    return 0
