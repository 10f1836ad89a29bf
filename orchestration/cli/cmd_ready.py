"""Validate every config in ConfigSources; queue the good ones, reject the bad ones with a
reason file in ConfigsFailed."""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from ..workspace import Workspace

HELP = "validate configs in ConfigSources and queue them (alias: readyConfigs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def report_outcomes(outcomes: list, reporter: Reporter) -> int:
    """Print what ``ready`` did; exit code 2 when any config was rejected."""
    rejected = 0
    for outcome in outcomes:
        if outcome.queued:
            reporter.line(outcome.message)
        elif outcome.skipped:
            reporter.warn(outcome.message)
        else:
            rejected += 1
            reporter.error(outcome.message)
        for warning in outcome.warnings:
            reporter.warn(f"{outcome.name}: {warning}")
    queued = sum(o.queued for o in outcomes)
    reporter.line(f"{queued} queued, {rejected} rejected")
    return 2 if rejected else 0


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..ready import ready_all

    return report_outcomes(ready_all(Workspace.from_setting(args.workspace)), reporter)
