"""How ``status --json`` reads in a list: the order rows come in, an experiment's steps
column (``1/3 train 40%``) and elapsed time, the summary line. Shared by ``status`` and the
experiments pages, so the terminal and the browser say the same thing."""
from __future__ import annotations

from typing import Any

from ..reporter import duration

SHOWN_FIRST = ("running", "failed", "queued", "completed")  # the most pressing first
FINISHED_STEP = ("done", "completed")  # records before the lifecycle rework said "done"


def pressing_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` running, failed, queued, then completed; in their own order within each."""
    return sorted(rows, key=lambda e: SHOWN_FIRST.index(e["state"]))


def steps_done(e: dict[str, Any]) -> int:
    return sum(t["state"] in FINISHED_STEP for t in e["tasks"])


def running_step(e: dict[str, Any]) -> dict[str, Any] | None:
    """The step a running experiment is in, if any."""
    if e["state"] != "running":
        return None
    return next((t for t in e["tasks"] if t["state"] == "running"), None)


def steps_text(e: dict[str, Any]) -> str:
    """``2/3``, and for a running experiment its step and that step's progress."""
    if not e["tasks"]:
        return "-"
    text = f"{steps_done(e)}/{len(e['tasks'])}"
    current = running_step(e)
    if current is not None:
        text += f" {current['id']}" + (f" {current['progress']:.0%}"
                                       if current.get("progress") is not None else "")
    return text


def elapsed(e: dict[str, Any], now: float) -> float | None:
    """Seconds from its first start to its end (or to ``now`` while unfinished)."""
    return ((e.get("ended") or now) - e["started"]) if e.get("started") else None


def summary_line(status: dict[str, Any]) -> str:
    """``1 completed, 2 running; 2 workers busy; all done in ~1m20s`` for a ``status --json``
    document."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(status["totals"].items()))
    outlook = eta_line(status)
    return f"{counts}; {outlook}" if outlook else counts


def eta_line(status: dict[str, Any]) -> str | None:
    """``2 workers busy; all done in ~1m20s``; None when nothing is queued or running."""
    totals = status["totals"]
    if not (totals.get("queued") or totals.get("running")):
        return None
    workers = f"{status['workers']} worker{'s' if status['workers'] != 1 else ''} busy"
    if status["eta_seconds"] is None:
        return (f"{workers}; time left unknown until every method has finished a step or "
                "reported progress once")
    return f"{workers}; all done in ~{duration(status['eta_seconds'])}"
