"""Every experiment: state, steps done/total, elapsed, estimated time left, and for failed
ones why; totals per state and when the queue will be done with the workers now running.
``--watch`` redraws it live until nothing is queued or running.

example: job-orchestration status --watch"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..exceptions import UsageError
from ..reporter import Reporter, duration, render_table
from ..states import StepState
from ..workspace import Workspace

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..records.overview import Overview

HELP = "list experiments, their progress and the time left"
WATCH_SECONDS = 2.0
SLURM_SECONDS = 30.0  # --watch asks squeue this seldom: polling floods the Slurm controller
MAX_ROWS = 100  # a table longer than this is for --json or --all, not for reading
SHOWN_FIRST = ("running", "failed", "queued", "completed")
CHROME_LINES = 7  # header, rule and caption lines of the table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--watch", action="store_true",
                        help="redraw every 2 s until nothing is queued or running")
    parser.add_argument("--all", action="store_true",
                        help=f"list every experiment (by default a table stops at {MAX_ROWS} "
                             "rows: running, failed, queued, then completed ones)")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.overview import collect
    from ..slurm.jobs import summary

    if args.json and args.watch:
        raise UsageError("--watch draws a live view for people; for scripts, run "
                         "`status --json` as often as needed")
    ws = Workspace.from_setting(args.workspace)
    if args.json:
        reporter.json({**collect(ws).as_json(), "slurm": summary(ws).as_json()}, indent=None)
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
                if reporter.out.is_terminal and not args.all:  # the totals line stays visible
                    limit = max(1, reporter.out.size.height - CHROME_LINES - len(slurm_lines))
                if time.monotonic() - slurm_asked > SLURM_SECONDS:
                    slurm_lines, slurm_asked = summary(ws).lines(), time.monotonic()
                live.update(view(overview, limit, slurm_lines), refresh=True)
                if not overview.active:
                    break
                time.sleep(WATCH_SECONDS)  # a redraw interval, not synchronisation
        except KeyboardInterrupt:
            pass
    if not reporter.out.is_terminal:
        reporter.line()  # into a pipe or file, rich's live view ends without a newline
    return 0


def view(overview: "Overview", limit: int | None = MAX_ROWS,
         slurm_lines: list[str] | tuple[str, ...] = ()) -> "RenderableType":
    """The status table (at most ``limit`` rows, the most pressing first), its caption the
    totals, the overall ETA and the workspace's Slurm jobs."""
    if not overview.experiments:
        return "\n".join(["no experiments", *([waiting_line(overview)] if overview.waiting
                                               else []), *slurm_lines])
    now = time.time()
    shown = overview.experiments
    if limit is not None and len(shown) > limit:
        shown = sorted(shown, key=lambda e: SHOWN_FIRST.index(e["state"]))[:limit]
    failed = any(e["state"] == "failed" for e in shown)
    rows = [(e["name"], _state(e), _steps(e), duration(_elapsed(e, now)),
             duration(e["eta_seconds"]) if e["state"] in ("queued", "running") else "",
             *([why(e)] if failed else [])) for e in shown]
    styles = [("red" if e["state"] == "failed" else "yellow" if _stalled(e) else None)
              for e in shown]
    caption = summary_line(overview)
    if len(shown) < len(overview.experiments):
        hidden = Counter(e["state"] for e in overview.experiments) - Counter(
            e["state"] for e in shown)
        caption += (f"\nnot shown: {', '.join(f'{n} {s}' for s, n in sorted(hidden.items()))}"
                    " (`status --all` lists them, `status --json` has everything)")
    if overview.waiting:
        caption += f"\n{waiting_line(overview)}"
    caption = "\n".join([caption, *slurm_lines])
    return render_table(["experiment", "state", "steps", "elapsed", "left",
                         *(["why"] if failed else [])], rows, caption=caption,
                        row_styles=styles)


def waiting_line(overview: "Overview") -> str:
    return (f"{overview.waiting} config{'s' if overview.waiting != 1 else ''} in "
            "ConfigSources are not readied: run job-orchestration ready")


def summary_line(overview: "Overview") -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(overview.totals.items()))
    if not overview.active:
        return counts
    workers = f"{overview.workers} worker{'s' if overview.workers != 1 else ''} busy"
    if overview.eta_seconds is None:
        return (f"{counts}; {workers}; time left unknown until a step of each method has "
                "finished or reported progress")
    rough = " (rough: little history yet)" if overview.rough else ""
    return f"{counts}; {workers}; all done in ~{duration(overview.eta_seconds)}{rough}"


def why(e: dict[str, Any]) -> str:
    """One line saying why a failed experiment failed (its step, the cause and detail)."""
    if e["state"] != "failed":
        return ""
    failure = e.get("failure")
    if failure:
        return f"{failure['step']}: {failure['detail']}" if failure.get("step") else (
            failure["detail"])
    return (e.get("error") or "").splitlines()[0] if e.get("error") else ""


def _stalled(e: dict[str, Any]) -> bool:
    return any(t.get("stalled") for t in e["tasks"])


def _state(e: dict[str, Any]) -> str:
    extra = (" (worker gone)" if e.get("worker_alive") is False else
             " (stalled)" if _stalled(e) else "")
    return e["state"] + extra


def _steps(e: dict[str, Any]) -> str:
    tasks = e["tasks"]
    if not tasks:
        return "-"
    text = f"{sum(t['state'] == StepState.COMPLETED for t in tasks)}/{len(tasks)}"
    current = next((t for t in tasks if t["state"] == StepState.RUNNING), None)
    if current is not None and e["state"] == "running":
        text += f" {current['id']}" + (f" {current['progress']:.0%}"
                                       if current.get("progress") is not None else "")
    return text


def _elapsed(e: dict[str, Any], now: float) -> float | None:
    return ((e.get("ended") or now) - e["started"]) if e.get("started") else None
