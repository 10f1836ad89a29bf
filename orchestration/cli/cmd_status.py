"""Every experiment: state, steps done/total, elapsed, estimated time left, and for failed
ones why; totals per state and when the queue will be done with the workers now running.
``--watch`` redraws it live until nothing is queued or running.

example: job-orchestration status --watch"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import TYPE_CHECKING

from ..exceptions import UsageError
from ..records.rows import (
    elapsed,
    pressing_first,
    stalled,
    state_text,
    steps_text,
    summary_line,
    waiting_line,
    why,
)
from ..reporter import Reporter, duration, render_table
from ..states import UNFINISHED, ExperimentState
from ..workspace import Workspace

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ..records.overview import Overview

HELP = "list experiments, their progress and the time left"
WATCH_SECONDS = 2.0
SLURM_SECONDS = 30.0  # --watch asks squeue this seldom: polling floods the Slurm controller
MAX_ROWS = 100  # a table longer than this is for --json or --all, not for reading
CHROME_LINES = 4  # header and rule of the table, the totals, "not shown": a first guess


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--watch", action="store_true",
                        help="redraw every 2 s until nothing is queued or running")
    parser.add_argument("--all", action="store_true",
                        help=f"list every experiment (by default a table stops at {MAX_ROWS} "
                             "rows: running, failed, queued, then completed ones)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.overview import collect
    from ..slurm.jobs import status_part, summary

    if args.json and args.watch:
        raise UsageError("--watch draws a live view for people; for scripts, run "
                         "`status --json` as often as needed")
    ws = Workspace.from_setting(args.workspace)
    if args.json:
        slurm = status_part(ws)
        reporter.raw(collect(ws).as_text(**({"slurm": slurm} if slurm is not None else {}))
                     + "\n")
        return 0
    limit = None if args.all else MAX_ROWS
    if not args.watch:
        reporter.out.print(view(collect(ws), limit, summary(ws).lines()))
        return 0
    slurm_asked, slurm_lines = 0.0, []
    with reporter.live() as live:
        try:
            while True:
                overview = collect(ws)
                if time.monotonic() - slurm_asked > SLURM_SECONDS:
                    slurm_lines, slurm_asked = summary(ws).lines(), time.monotonic()
                if reporter.out.is_terminal and not args.all:  # the totals line stays visible
                    shown = fitted(reporter.out, overview, slurm_lines)
                else:
                    shown = view(overview, limit, slurm_lines)
                live.update(shown, refresh=True)
                if not overview.active:
                    break
                time.sleep(WATCH_SECONDS)  # a redraw interval, not synchronisation
        except KeyboardInterrupt:
            pass
    if not reporter.out.is_terminal:
        reporter.line()  # into a pipe or file, rich's live view ends without a newline
    return 0


def fitted(console: "Console", overview: "Overview",
           slurm_lines: list[str] | tuple[str, ...] = ()) -> "RenderableType":
    """The view with as many rows as the terminal shows whole, so that the totals and the
    time left below them never scroll out of sight (a row can take two lines, and a line
    below the table can wrap)."""
    height = max(1, console.size.height - 1)  # the line the cursor rests on
    limit = max(1, height - CHROME_LINES - len(slurm_lines))
    while True:
        shown = view(overview, limit, slurm_lines)
        excess = len(console.render_lines(shown, pad=False)) - height
        if excess <= 0 or limit == 1:
            return shown
        limit = max(1, limit - excess)  # a row takes at least one line: this fits, or 1


def view(overview: "Overview", limit: int | None = MAX_ROWS,
         slurm_lines: list[str] | tuple[str, ...] = ()) -> "RenderableType":
    """The status table (at most ``limit`` rows, the most pressing first), then the totals,
    the overall ETA and the workspace's Slurm jobs, each line as wide as the screen (a
    table's caption would wrap at the table's width)."""
    from rich.console import Group
    from rich.text import Text

    status = overview.as_json()
    waiting = [line] if (line := waiting_line(status)) else []
    if not overview.experiments:
        return "\n".join(["no experiments", *waiting, *slurm_lines])
    now = time.time()
    shown = overview.experiments
    if limit is not None and len(shown) > limit:
        shown = pressing_first(shown)[:limit]
    failed = any(e["state"] == ExperimentState.FAILED for e in shown)
    rows = [(e["name"], state_text(e), steps_text(e), duration(elapsed(e, now)),
             duration(e["eta_seconds"]) if e["state"] in UNFINISHED else "",
             *([why(e)] if failed else [])) for e in shown]
    styles = [("red" if e["state"] == ExperimentState.FAILED else "yellow" if stalled(e) else None)
              for e in shown]
    lines = [summary_line(status)]
    if len(shown) < len(overview.experiments):
        hidden = Counter(e["state"] for e in overview.experiments) - Counter(
            e["state"] for e in shown)
        lines.append(f"not shown: {', '.join(f'{n} {s}' for s, n in sorted(hidden.items()))}"
                     " (`status --all` lists them, `status --json` has everything)")
    table = render_table(["experiment", "state", "steps", "elapsed", "left",
                          *(["why"] if failed else [])], rows, row_styles=styles,
                         one_line=True)
    return Group(table, Text("\n".join([*lines, *waiting, *slurm_lines]), no_wrap=False))
