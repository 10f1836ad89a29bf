"""Adaptive search with Optuna: trials are experiments of the queue; the workers tell the
study each result and queue the next trial, so no driver runs. `search start SPEC.yaml`
(a config plus a search: block), `search status [NAME]`, `search stop NAME`, `search best
NAME`. Needs `pip install 'job-orchestration[search]'`.

example: job-orchestration search start lr-search.yaml --ready"""
from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import UsageError
from ..reporter import Reporter, duration
from .cmd_ready import report_outcomes

HELP = "adaptive search (Optuna): start, status, stop, best"
ACTIONS = ("start", "status", "stop", "best")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="status",
                        metavar="ACTION", help="start SPEC | status [NAME] | stop NAME | best "
                                               "NAME (default: status of every search)")
    parser.add_argument("target", nargs="?", metavar="SPEC|NAME",
                        help="the spec file (start) or the search's name")
    parser.add_argument("--name", help="start: the search's name (default: the spec's stem)")
    parser.add_argument("--ready", action="store_true",
                        help="start: queue the first trials at once (default: they wait in "
                             "ConfigSources for `ready`)")
    parser.add_argument("--json", action="store_true", help="status, best: print JSON")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..workspace import Workspace

    ws = Workspace.from_setting(args.workspace)
    if args.target is None and args.action != "status":
        raise UsageError(f"search {args.action}: give the "
                         f"{'spec file' if args.action == 'start' else 'search name'}")
    if args.action != "start" and (args.name or args.ready):
        raise UsageError("--name and --ready go with `search start` only")
    if args.json and args.action not in ("status", "best"):
        raise UsageError("--json goes with `search status` and `search best` only")
    if args.action == "start":
        return _start(ws, args, reporter)
    if args.action == "stop":
        from ..adaptive.advance import stop
        from ..adaptive.store import SearchFolder

        stop(SearchFolder(ws, args.target))
        reporter.line(f"search {args.target} stopped: no new trials; those queued or running "
                      "finish and are told")
        return 0
    from ..adaptive import report, store

    if args.action == "best":
        found = report.best(ws, args.target)
        if args.json:
            reporter.json(found)
        else:
            reporter.line(f"{found['experiment']}: {found['objective']} = {found['value']:g}; "
                          f"{_params(found['params'])}; output in {found['output_dir']}")
        return 0
    names = [args.target] if args.target else store.search_names(ws)
    if not names:
        raise UsageError(f"no searches in {ws.root}; start one with `job-orchestration search "
                         "start SPEC.yaml`")
    found_all = [report.status(ws, name) for name in names]
    if args.json:
        reporter.json(found_all[0] if args.target else found_all)
    for info in [] if args.json else found_all:
        _print_status(info, reporter)
    return 0


def _start(ws: Any, args: argparse.Namespace, reporter: Reporter) -> int:
    from ..adaptive.start import search

    started = search(args.target, name=args.name, ready=args.ready, workspace=ws)
    spec = started.spec
    reporter.line(f"search {started.name}: {spec.direction} {spec.objective} over "
                  f"{started.budget} trials, {spec.parallel} at a time ({spec.sampler}); study "
                  f"in {started.journal}")
    if spec.sampler == "grid" and started.budget < spec.trials:
        reporter.line(f"the grid has {started.budget} points: the search ends after them")
    if args.ready:
        return report_outcomes(started.outcomes, reporter)
    for name in started:
        reporter.line(f"{name}: written into ConfigSources")
    reporter.line(f"{len(started)} written; run `job-orchestration ready` to queue them (the "
                  "workers queue each later trial themselves)")
    return 0


def _params(params: dict[str, Any]) -> str:
    from ..adaptive.trials import describe

    return describe(params, digits=6)


def _print_status(info: dict[str, Any], reporter: Reporter) -> None:
    from ..adaptive.report import SearchState

    counts = info["counts"]
    reporter.line(f"search {info['name']}: {info['state']} ({info['sampler']}, "
                  f"{info['direction']} {info['objective']})"
                  + (f"; {info['stopped']}" if info["stopped"] else ""))
    reporter.line(f"  trials: {info['asked']} of {info['trials']} asked; "
                  f"{counts['completed']} completed, {counts['failed']} failed, "
                  f"{counts['running']} running, {counts['queued']} queued"
                  + (f", {counts['new']} waiting for ready" if counts["new"] else "")
                  + (f", {counts['removed']} removed" if counts["removed"] else ""))
    best = info["best"]
    reporter.line("  best: " + (f"{best['value']:g} ({best['name']}: {_params(best['params'])})"
                                if best else "none yet"))
    if info["state"] != SearchState.DONE:
        reporter.line(f"  time left: {duration(info['eta_seconds'])}")
    reporter.line(f"  study: {info['journal']}")


def print_trials(args: argparse.Namespace, reporter: Reporter) -> int:
    """``results --search NAME``: one row per trial, best first."""
    import csv
    import io

    from ..adaptive.report import trial_rows
    from ..workspace import Workspace

    if args.where:
        raise UsageError("--where and --search cannot be combined; --search lists the "
                         "search's own trials")
    spec, rows = trial_rows(Workspace.from_setting(args.workspace), args.search)
    if args.format == "json":
        reporter.json([vars(r) for r in rows])
        return 0
    columns = ["trial", "name", "state", spec.objective, *(p.name for p in spec.params)]
    exact = args.format == "csv"  # a table rounds for reading, CSV keeps every digit
    cells = [[r.trial, r.name, r.state, *(_cell(v, exact) for v in (r.value,
                                                                      *r.params.values()))]
             for r in rows]
    if exact:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([columns, *cells])
        reporter.raw(out.getvalue())
    elif rows:
        reporter.table(columns, cells)
    else:
        reporter.line(f"search {args.search} has no trials yet")
    return 0


def _cell(value: Any, exact: bool) -> str:
    from ..config.names import show

    if isinstance(value, float) and not exact:
        return f"{value:.6g}"
    return "" if value is None else show(value)
