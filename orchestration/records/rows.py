"""How ``status --json`` reads in a list: the order rows come in, an experiment's steps
column (``1/3 train 40%``), its elapsed time, why it failed, the summary line. Shared by
``status`` and the experiments pages, so the terminal and the browser say the same thing."""
from __future__ import annotations

from typing import Any

from ..reporter import duration
from ..states import UNFINISHED, ExperimentState, StepState

SHOWN_FIRST = (ExperimentState.RUNNING, ExperimentState.FAILED, ExperimentState.QUEUED,
               ExperimentState.COMPLETED)  # the most pressing first


def pressing_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` running, failed, queued, then completed; in their own order within each."""
    return sorted(rows, key=lambda e: SHOWN_FIRST.index(e["state"]))


def steps_done(e: dict[str, Any]) -> int:
    return sum(t["state"] == StepState.COMPLETED for t in e["tasks"])


def running_step(e: dict[str, Any]) -> dict[str, Any] | None:
    """The step a running experiment is in, if any."""
    if e["state"] != ExperimentState.RUNNING:
        return None
    return next((t for t in e["tasks"] if t["state"] == StepState.RUNNING), None)


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


def stalled(e: dict[str, Any]) -> bool:
    """A running step that reported progress, then none for its ``stall_after`` seconds."""
    return any(t.get("stalled") for t in e["tasks"])


def state_text(e: dict[str, Any]) -> str:
    extra = (" (worker gone)" if e.get("worker_alive") is False else
             " (stalled)" if stalled(e) else "")
    return e["state"] + extra


def why(e: dict[str, Any]) -> str:
    """One line saying why a failed experiment failed: its step, cause and detail (else the
    first line of its error; for a config rejected at ``ready``, its first problem)."""
    if e["state"] != ExperimentState.FAILED:
        return ""
    failure = e.get("failure")
    if failure:
        return f"{failure['step']}: {failure['detail']}" if failure.get("step") else (
            failure["detail"])
    lines = (e.get("error") or "").splitlines()
    if len(lines) > 1 and lines[0].endswith("config rejected:"):  # the file's path: no news
        return lines[1].strip().removeprefix("- ")
    return lines[0] if lines else ""


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
    if not any(totals.get(state) for state in UNFINISHED):
        return None
    workers = f"{status['workers']} worker{'s' if status['workers'] != 1 else ''} busy"
    if status["eta_seconds"] is None:
        return (f"{workers}; time left unknown until a step of each method has finished or "
                "reported progress")
    rough = " (rough: little history yet)" if status.get("eta_rough") else ""
    return f"{workers}; all done in ~{duration(status['eta_seconds'])}{rough}"


def waiting_line(status: dict[str, Any]) -> str | None:
    """The configs nobody readied, if any: a queue that looks empty may not be."""
    waiting = status.get("not_readied")
    return not_readied(waiting) if waiting else None


def not_readied(count: int) -> str:
    """What ``status`` and ``worker`` say when configs wait in ConfigSources."""
    configs, are = ("configs", "are") if count != 1 else ("config", "is")
    return f"{count} {configs} in ConfigSources {are} not readied: run job-orchestration ready"
