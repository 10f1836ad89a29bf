"""Every experiment: state, steps done/total, elapsed, estimated time left; totals per state
and when the queue will be done with the workers now running. ``--watch`` redraws it live
until nothing is queued or running."""
from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import UsageError
from ..reporter import Reporter, duration, render_table
from ..workspace import Workspace

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..records.overview import Overview

HELP = "list experiments, their progress and the time left"
WATCH_SECONDS = 2.0
MAX_ROWS = 100  # a table longer than this is for --json or --all, not for reading


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--watch", action="store_true",
                        help="redraw every 2 s until nothing is queued or running")
    parser.add_argument("--all", action="store_true",
                        help=f"list every experiment (by default a table stops at {MAX_ROWS} "
                             "rows: running, failed, queued, then completed ones)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.overview import collect

    if args.json and args.watch:
        raise UsageError("--watch draws a live view for people; for scripts, run "
                         "`status --json` as often as needed")
    ws = Workspace.from_setting(args.workspace)
    if args.json:
        reporter.json(collect(ws).as_json(), indent=None)
        return 0
    limit = None if args.all else MAX_ROWS
    if not args.watch:
        reporter.out.print(view(collect(ws), limit))
        return 0
    with reporter.live() as live:
        try:
            while True:
                overview = collect(ws)
                live.update(view(overview, limit), refresh=True)
                if not overview.active:
                    break
                time.sleep(WATCH_SECONDS)  # a redraw interval, not synchronisation
        except KeyboardInterrupt:
            pass
    if not reporter.out.is_terminal:
        reporter.line()  # into a pipe or file, rich's live view ends without a newline
    return 0


def view(overview: "Overview", limit: int | None = MAX_ROWS) -> "RenderableType":
    """The status table (at most ``limit`` rows, the most pressing first), its caption the
    totals and the overall ETA."""
    if not overview.experiments:
        return "no experiments"
    from ..records.rows import elapsed, pressing_first, steps_text, summary_line

    now = time.time()
    shown = overview.experiments
    if limit is not None and len(shown) > limit:
        shown = pressing_first(shown)[:limit]
    rows = [(e["name"], _state(e), steps_text(e), duration(elapsed(e, now)),
             duration(e["eta_seconds"]) if e["state"] in ("queued", "running") else "")
            for e in shown]
    caption = summary_line(overview.as_json())
    if len(shown) < len(overview.experiments):
        caption += (f"\n{len(overview.experiments) - len(shown)} more not shown: "
                    "`status --all` lists them, `status --json` has everything")
    return render_table(["experiment", "state", "steps", "elapsed", "left"], rows,
                        caption=caption)


def _state(e: dict[str, Any]) -> str:
    return e["state"] + (" (worker gone)" if e.get("worker_alive") is False else "")
