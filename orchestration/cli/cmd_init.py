"""Create the workspace folders (harmless when they exist).

example: job-orchestration init --workspace ~/experiments"""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..states import ExperimentState
from ..workspace import Workspace

HELP = "create the workspace folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    ws = Workspace.from_setting(args.workspace, must_exist=False)
    created = ws.init()
    reporter.line(f"workspace {ws.root}: " + (f"created {len(created)} folders" if created
                                             else "already set up"))
    return 0


def run_bare(args: argparse.Namespace, reporter: Reporter) -> int:
    """``job-orchestration`` with no command: set up the workspace and say what is next."""
    run(args, reporter)
    ws = Workspace.from_setting(args.workspace, must_exist=False)
    reporter.line(f"next: put configs in {ws.folder(ExperimentState.NEW)}, then run "
                  "`job-orchestration ready` and `job-orchestration worker`")
    return 0
