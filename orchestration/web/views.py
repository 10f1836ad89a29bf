"""What the experiments pages show, as plain data: a page of the status list, one
experiment, a step's log from an offset, two runs compared.

Everything here reads files and returns JSON-ready dicts; ``handlers`` runs it off the
scheduler's event loop. Times are formatted here (``reporter.duration``), so the browser
shows exactly what ``status`` prints.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config.keys import flatten_config
from ..records import run_record
from ..records.compare import Comparison, compare, show_value
from ..records.rows import (
    SHOWN_FIRST,
    elapsed,
    eta_line,
    pressing_first,
    running_step,
    steps_done,
    steps_text,
)
from ..records.summary import summarize, view_of
from ..reporter import duration
from ..states import UNFINISHED, ExperimentState, StepState
from ..workspace import Workspace
from . import confine

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
LOG_TAIL_BYTES = 64 * 1024  # what a log view starts with
LOG_CHUNK_BYTES = 256 * 1024  # at most this much per poll; the page asks again for more
LAST_LINE_BYTES = 8 * 1024
ATTEMPT_MARK = "=== "  # the lines the framework writes around each attempt in a step's log
SIBLINGS = 30


class BadQuery(ValueError):
    """A paging or filter parameter the page never sends (answered 400)."""


@dataclass(frozen=True)
class Query:
    """Which rows of the status list a page shows: a name filter, a state tab, a window."""

    search: str = ""
    state: str = ""
    offset: int = 0
    limit: int = PAGE_SIZE

    PARAMETERS = ("q", "state", "offset", "limit")

    @classmethod
    def parse(cls, get: Callable[[str], str | None]) -> "Query":
        state = get("state") or ""
        if state and state not in SHOWN_FIRST:
            raise BadQuery(f"state must be one of {', '.join(SHOWN_FIRST)}")
        try:
            offset, limit = int(get("offset") or 0), int(get("limit") or PAGE_SIZE)
        except ValueError:
            raise BadQuery("offset and limit must be whole numbers") from None
        if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
            raise BadQuery(f"offset must be >= 0 and limit between 1 and {MAX_PAGE_SIZE}")
        return cls((get("q") or "").strip(), state, offset, limit)


def page(ws: Workspace, status: dict[str, Any], query: Query, now: float) -> dict[str, Any]:
    """One window of ``status --json``: rows filtered by name and state, the most pressing
    first (running, failed, queued, completed), each with what the page shows of it."""
    needle = query.search.casefold()
    rows = pressing_first([r for r in status["experiments"]
                           if (not needle or needle in r["name"].casefold())
                           and (not query.state or r["state"] == query.state)])
    window = rows[query.offset:query.offset + query.limit]
    return {"experiments": [{**r, "view": row_view(ws, r, now)} for r in window],
            "totals": status["totals"], "eta_seconds": status["eta_seconds"],
            "workers": status["workers"], "eta_line": eta_line(status),
            "matched": len(rows), "offset": query.offset, "limit": query.limit}


def row_view(ws: Workspace, row: dict[str, Any], now: float) -> dict[str, Any]:
    """An experiment as a person reads it: steps and progress, elapsed, time left, and for a
    failed one why, with the last line its failed step logged."""
    total, done = len(row["tasks"]), steps_done(row)
    current = running_step(row)
    fraction = (current.get("progress") or 0.0) if current else 0.0
    left = row.get("eta_seconds")
    view = {"done": done, "total": total, "running_fraction": fraction,
            "progress": 1.0 if row["state"] == ExperimentState.COMPLETED else
            (done + fraction) / total if total else 0.0,
            "steps": steps_text(row), "running_step": current["id"] if current else None,
            "message": current.get("message") if current else None,
            "elapsed": duration(elapsed(row, now)),
            "left": duration(left) if row["state"] in UNFINISHED else "",
            "worker_gone": row.get("worker_alive") is False}
    if row["state"] == ExperimentState.FAILED:
        why = failure_of(row)
        view.update(why, last_log_line=last_log_line(ws, row, why["failed_step"]))
    return view


def failure_of(row: dict[str, Any]) -> dict[str, Any]:
    """Why it failed: the recorded ``failure`` if any, else the first line of its error."""
    failure = row.get("failure")
    if failure:
        return {"cause": failure.get("cause"), "detail": failure.get("detail"),
                "failed_step": failure.get("step"), "attempts": failure.get("attempts")}
    error = (row.get("error") or "").strip()
    step = next((t for t in row["tasks"] if t["state"] == StepState.FAILED), None)
    return {"cause": None, "detail": error.splitlines()[0] if error else None,
            "failed_step": step["id"] if step else None,
            "attempts": step.get("attempts") if step else None}


def last_log_line(ws: Workspace, row: dict[str, Any], step: str | None) -> str | None:
    """The last line ``step`` wrote to its log (not the framework's attempt lines)."""
    task = next((t for t in row["tasks"] if t["id"] == step), None)
    folder = row.get("output_dir")
    if task is None or not folder or confine.inside(folder, ws.output) is None:
        return None
    try:
        path = confine.step_log(folder, task)
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - LAST_LINE_BYTES))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except (confine.NotFound, OSError):
        return None
    return next((line.strip()[:500] for line in reversed(lines)
                 if line.strip() and not line.startswith(ATTEMPT_MARK)), None)


def experiment(ws: Workspace, raw_name: str, row: dict[str, Any] | None,
               now: float) -> dict[str, Any]:
    """One experiment as ``show --json`` has it, its status row's estimate and failure
    (``row``, from the shared status), and what the page shows of it."""
    name, state, path = confine.locate(ws, raw_name)
    folder = confine.output_dir(ws, name)
    try:
        record = run_record.load(folder).to_json() if folder is not None else None
    except (OSError, ValueError):
        record = None
    info = (summarize(ws, name, state, path) if record is None else
            summarize(ws, name, state, path, view_of(record), record.get("config")))
    for key in ("eta_seconds", "failure", "worker_alive"):
        if row is not None and key in row and key not in info:
            info[key] = row[key]
    info.setdefault("eta_seconds", None)
    for task in info["tasks"]:
        task["time_text"] = duration(task["seconds"])
    info["view"] = row_view(ws, info, now)
    info["config"] = [(k, show_value(v)) for k, v in
                      flatten_config(info.get("config") or {}).items()]
    return info


def log_chunk(ws: Workspace, raw_name: str, step: str, offset: int | None) -> dict[str, Any]:
    """A step's log from byte ``offset`` on (None: its tail), found only through the
    experiment's own run record. ``offset`` in the answer is where to ask next; ``reset``
    says the log was replaced (a new attempt), so the page starts over."""
    name, _, _ = confine.locate(ws, raw_name)
    folder = confine.output_dir(ws, name)
    if folder is None:
        raise confine.NotFound(name)
    try:
        record = run_record.load(folder)
    except (OSError, ValueError):
        raise confine.NotFound(name) from None
    if step not in record.tasks:
        raise confine.NotFound(step)
    task = record.tasks[step].to_json()
    path = confine.step_log(folder, task)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            reset = offset is not None and offset > size
            start = max(0, size - LOG_TAIL_BYTES) if offset is None or reset else offset
            fh.seek(start)
            data = fh.read(min(size - start, LOG_CHUNK_BYTES))
    except FileNotFoundError:
        return {"text": "", "offset": 0, "size": 0, "more": False, "reset": False,
                "state": task.get("state")}
    cut = 0
    if start > 0 and (offset is None or reset):  # a tail starts at a whole line
        cut = data.find(b"\n") + 1
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = decoder.decode(data[cut:])  # a character split by the chunk's end waits
    end = start + len(data) - len(decoder.getstate()[0])
    return {"text": text, "offset": end, "size": size, "more": end < size, "reset": reset,
            "skipped": start + cut, "state": task.get("state")}


def comparison(ws: Workspace, raw_a: str, raw_b: str) -> tuple[str, str, Comparison]:
    """Two experiments' run records compared, as ``diff A B``."""
    records = []
    for raw in (raw_a, raw_b):
        name, _, _ = confine.locate(ws, raw)
        folder = confine.output_dir(ws, name)
        try:
            if folder is None:
                raise FileNotFoundError(name)
            records.append((name, run_record.load(folder)))
        except (OSError, ValueError):
            raise confine.NotFound(name) from None
    (a, record_a), (b, record_b) = records
    return a, b, compare(record_a, record_b)


def siblings(ws: Workspace, name: str, output_dir: str | None) -> list[str]:
    """Experiments to compare ``name`` with: those whose output folders share its parent
    folder (a sweep's runs), the nearest in name order first."""
    if not output_dir:
        return []
    parent = Path(output_dir).parent
    names = sorted({n for n, folder in ws.registered().items() if folder.parent == parent}
                   | {name})
    here = names.index(name)
    near = sorted(range(len(names)), key=lambda i: (abs(i - here), i))
    return [names[i] for i in near if i != here][:SIBLINGS]
