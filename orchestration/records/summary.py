"""Read side: an experiment as ``show``/``status`` print it, from its folder and run record.

The state comes from the folder the config is in (the source of truth); the rest from the
run record's *view*: its JSON without what no listing needs (the resolved config, the
environment's package list, the recorded patch and files), which ``ViewCache`` keeps keyed
by the record file's size and mtime, so ``status`` over 10,000 experiments parses one file
instead of 10,000. Configs rejected before they had a record are still listed, with their
reason.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..exceptions import OrchestrationError
from ..fsutil import atomic_write, dumps, read_json
from ..states import ExperimentState, StepState
from ..workspace import Workspace
from . import eta, run_record

LISTED = (ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.COMPLETED,
          ExperimentState.FAILED)
CACHE_VERSION = 6
_LINES = 4  # per cache entry: the view, the row, the samples, the results row
_NO_PROGRESS: dict[str, Any] = {}
_VIEW_KEYS = ("name", "state", "output_dir", "config", "config_sha256", "warnings",
              "readied_at", "ended", "failure")
_PROVENANCE_KEYS = ("available", "commit", "dirty", "branch")
# what a listing shows of a step: the rest (its log's path: the output folder says it) is
# left out, so 10,000 views stay a few MB (the cache is parsed whole by every `status`)
_TASK_KEYS = ("id", "method", "state", "attempts", "seconds", "started", "ended",
              "attempt_started", "result", "error", "progress", "gpus", "failures")


def view_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record's JSON trimmed for listings (see the module doc): what ``status``,
    ``results`` and the pages show. Each step keeps its ``stall_after`` from the config,
    for the stall flag."""
    view = {k: record[k] for k in _VIEW_KEYS if record.get(k) not in (None, [], {})}
    for key in ("provenance", "run_provenance"):
        if isinstance(record.get(key), dict):
            view[key] = {k: record[key].get(k) for k in _PROVENANCE_KEYS}
    attempts = record.get("attempts") or []
    view["started"] = attempts[0].get("started") if attempts else None
    stall = {t.get("id"): t.get("stall_after") for t in (record.get("config") or {}).get(
        "tasks", []) if isinstance(t, dict)}
    view["tasks"] = {tid: {**{k: task[k] for k in _TASK_KEYS
                              if task.get(k) not in (None, [], {})},
                           **({"stall_after": stall[tid]} if stall.get(tid) else {})}
                     for tid, task in (record.get("tasks") or {}).items()}
    return view


@dataclass(slots=True)
class _Entry:
    """One record's cached view: valid while the record's mtime and size are unchanged."""

    mtime_ns: int
    size: int
    view: str  # the view as one line of JSON
    config_file: str | None = None  # the file the row below was made for
    row: str | None = None  # a completed experiment's ``status --json`` row
    samples: str | None = None  # its finished steps, as ``eta.finished_samples`` gives them
    result_row: str | None = None  # what ``results`` takes of a finished record


class ViewCache:
    """Views of run records, kept in ``Misc/cache/views`` between calls.

    Each entry keeps its view as JSON text, parsed only when asked for: ``status`` needs
    the view of the few queued, running and failed experiments, and of a completed one only
    its row (kept as text, with the step durations the estimates learn from, parsed only
    when something is left to estimate); ``results`` only its config and returned values.
    The file is a JSON header line (the keys and stamps) followed by four lines per entry,
    so loading it splits lines instead of unescaping 10,000 JSON strings."""

    def __init__(self, ws: Workspace) -> None:
        self.path = ws.misc / "cache" / "views"
        self.entries: dict[str, _Entry] = {}  # by output folder
        self.changed = False
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
            head = json.loads(lines[0])
            if head.get("version") == CACHE_VERSION:
                for i, (key, mtime_ns, size, config_file) in enumerate(head["entries"]):
                    view, *rest = lines[i * _LINES + 1: (i + 1) * _LINES + 1]
                    if not view.startswith("{") or len(rest) != _LINES - 1:
                        raise ValueError("damaged")
                    self.entries[key] = _Entry(mtime_ns, size, view, config_file,
                                               *(line or None for line in rest))
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            self.entries = {}

    def _entry(self, output_dir: str) -> _Entry | None:
        """The fresh entry for ``output_dir``, read from its record on a miss; None when
        the record is missing or unreadable."""
        path = os.path.join(output_dir, run_record.RECORD_NAME)
        try:
            st = os.stat(path)
        except OSError:
            return None
        hit = self.entries.get(output_dir)
        if hit is not None and hit.mtime_ns == st.st_mtime_ns and hit.size == st.st_size:
            return hit
        try:
            view = view_of(run_record.RunRecord.from_json(read_json(Path(path))).to_json())
        except (OSError, ValueError):
            return None
        entry = self.entries[output_dir] = _Entry(st.st_mtime_ns, st.st_size, compact(view))
        self.changed = True
        return entry

    def view(self, output_dir: Path | str | None) -> dict[str, Any] | None:
        """The view of the record in ``output_dir`` (side files laid over a running one),
        or None when there is no readable record."""
        if output_dir is None:
            return None
        entry = self._entry(str(output_dir))
        return None if entry is None else self._parsed(entry, str(output_dir))

    @staticmethod
    def _parsed(entry: _Entry, output_dir: str) -> dict[str, Any]:
        view = json.loads(entry.view)
        if view.get("state") == ExperimentState.RUNNING:
            view = run_record.overlay(view, Path(output_dir))
        return view

    def completed_row(self, ws: Workspace, name: str, config_file: str,
                      output_dir: str) -> tuple[str, str] | None:
        """A completed experiment's ``status --json`` row, and its finished steps (as
        ``eta.finished_samples`` lists them), both as JSON text; None without a record."""
        entry = self._entry(output_dir)
        if entry is None:
            return None
        if entry.row is None or entry.config_file != config_file:
            view = json.loads(entry.view)
            info = summarize(ws, name, ExperimentState.COMPLETED, config_file, view)
            info["eta_seconds"] = 0.0
            entry.config_file, entry.row = config_file, compact(info)
            entry.samples = compact(eta.finished_samples(view))
            self.changed = True
        return entry.row, entry.samples or "[]"

    def result_row(self, output_dir: str, make: Callable[[dict[str, Any]], Any]) -> Any:
        """``make(view)`` for the record in ``output_dir`` (None without one), kept while the
        record is unchanged; a running record's side files change under it: made afresh."""
        entry = self._entry(output_dir)
        if entry is None:
            return None
        if entry.result_row is not None:
            return json.loads(entry.result_row)
        view = self._parsed(entry, output_dir)  # the entry just checked: no second stat
        made = make(view)
        if view.get("state") != ExperimentState.RUNNING:
            entry.result_row, self.changed = compact(made), True
        return made

    def save(self, keep: set[str] | None = None) -> None:
        """Write the cache back if it changed (``keep``: the folders still in use)."""
        if keep is not None:
            stale = set(self.entries) - keep
            for key in stale:
                del self.entries[key]
            self.changed |= bool(stale)
        if not self.changed:
            return
        head = compact({"version": CACHE_VERSION, "entries": [
            [key, e.mtime_ns, e.size, e.config_file] for key, e in self.entries.items()]})
        lines = [head]
        for e in self.entries.values():  # compact JSON holds no newline
            lines += (e.view, e.row or "", e.samples or "", e.result_row or "")
        try:
            self.path.parent.mkdir(exist_ok=True)
            atomic_write(self.path, "\n".join(lines), durable=False)
        except OSError:
            pass  # a cache: the next call reads the records again


def compact(data: Any) -> str:
    """One-line JSON (the C encoder: several times faster than an indented dump)."""
    return dumps(data, indent=None)


def _task_rows(view: dict, now: float) -> list[dict[str, Any]]:
    rows = []
    logs = f"{view.get('output_dir')}/logs/"
    for task in view.get("tasks", {}).values():
        state = task.get("state")
        progress = task.get("progress") or _NO_PROGRESS
        row = {"id": task["id"], "method": task["method"], "state": state,
               "seconds": task.get("seconds"), "attempts": task.get("attempts", 0),
               "progress": progress.get("fraction"), "message": progress.get("message"),
               "result": task.get("result"), "error": task.get("error"),
               "log": task.get("log") or f"{logs}{task['id']}.log", "gpus": task.get("gpus")}
        if state == StepState.RUNNING and task.get("attempt_started"):
            row["seconds"] = now - task["attempt_started"]
            stall = task.get("stall_after")
            row["stalled"] = bool(stall and progress.get("at") and now - progress["at"] > stall)
        if task.get("failures"):
            row["failures"] = task["failures"]
        rows.append(row)
    return rows


def summarize(ws: Workspace, name: str, state: ExperimentState, path: Path | str,
              view: dict[str, Any] | None = None, config: dict | None = None,
              now: float | None = None) -> dict[str, Any]:
    """The ``show --json`` view of one experiment (``view``: its record's view, when the
    caller has it; ``config``: include it)."""
    info: dict[str, Any] = {"name": name, "state": state.value, "config_file": str(path),
                            "commit": None, "dirty": None, "output_dir": None, "tasks": []}
    if state is ExperimentState.FAILED:
        try:
            info["error"] = ws.error_file(Path(path)).read_text().strip()
        except OSError:
            info["error"] = None
    if view is None:  # not readied: no record to add
        return info
    prov = view.get("provenance") or {}
    info.update(output_dir=view.get("output_dir"), commit=prov.get("commit"),
                dirty=prov.get("dirty"), branch=prov.get("branch"),
                provenance=prov.get("available", False),
                tasks=_task_rows(view, now or time.time()), warnings=view.get("warnings", []),
                readied_at=view.get("readied_at"), ended=view.get("ended"))
    if state is ExperimentState.FAILED and view.get("failure"):
        info["failure"] = view["failure"]
    if run_prov := view.get("run_provenance"):  # the code changed between ready and run
        info.update(run_commit=run_prov.get("commit"), run_dirty=run_prov.get("dirty"))
    info["started"] = view.get("started")
    if config is not None:
        info["config"] = config
    return info


def show(ws: Workspace, name: str) -> dict[str, Any]:
    """``show --json``: one experiment, its config included."""
    state, path = ws.locate(name)
    try:
        record = run_record.RunRecord.load(ws.output_dir(name)).to_json()
    except (OSError, ValueError, OrchestrationError):  # not readied, or damaged
        return summarize(ws, name, state, path)
    return summarize(ws, name, state, path, view_of(record), record.get("config"))


def listed(ws: Workspace) -> Iterator[tuple[ExperimentState, str, str, str | None]]:
    """Every queued, running, completed or failed config: its state, name, file and output
    folder (None if it was never readied), without reading any record (strings: Paths cost
    more than the rest of a listing of 10,000)."""
    links = ws.registered_paths()
    for state in LISTED:
        for path in ws.config_paths(state):
            name = os.path.splitext(os.path.basename(path))[0]
            yield state, name, path, links.get(name)


def all_experiments(ws: Workspace) -> list[dict[str, Any]]:
    """Every experiment of the workspace that is queued, running, completed or failed."""
    cache = ViewCache(ws)
    rows = [summarize(ws, name, state, path, cache.view(output_dir))
            for state, name, path, output_dir in listed(ws)]
    cache.save()
    return rows
