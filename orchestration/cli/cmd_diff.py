"""Compare two runs: config differences, the code diff between their recorded code states
(uncommitted patches and untracked files included), and environment differences.

example: job-orchestration diff sweep-lr0.1-seed1 sweep-lr0.01-seed1"""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "compare two experiments' configs, code and environment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name_a", metavar="NAME_A", help="the experiment to compare from")
    parser.add_argument("name_b", metavar="NAME_B", help="the experiment to compare to")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.compare import compare
    from ..records.run_record import load_named

    ws = Workspace.from_setting(args.workspace)
    found = compare(load_named(ws, args.name_a), load_named(ws, args.name_b))
    reporter.line(f"config ({args.name_a} -> {args.name_b}):", style="bold")
    for line in found.config or ["no differences"]:
        reporter.line(f"  {line}", style=_style(line))
    reporter.line("code:", style="bold")
    if found.code:
        reporter.diff(found.code if found.code.endswith("\n") else found.code + "\n")
    else:
        reporter.line("  no differences")
    reporter.line("environment:", style="bold")
    for line in found.environment or ["no differences"]:
        reporter.line(f"  {line}", style=_style(line))
    return 0


def _style(line: str) -> str | None:
    return {"+": "green", "-": "red"}.get(line[:1], "yellow" if " -> " in line else None)
