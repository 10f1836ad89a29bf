"""Read side: an experiment as ``show``/``status`` print it, from its folder and run record.

The state comes from the folder the config is in (the source of truth); the rest from the
run record's *view*: its JSON without what no listing needs (the resolved config, the
environment's package list, the recorded patch and files), which ``ViewCache`` keeps keyed
by the record file's size and mtime, so ``status`` over 10,000 experiments parses one file
instead of 10,000. Configs rejected before they had a record are still listed, with their
reason.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

from ..exceptions import OrchestrationError
from ..fsutil import atomic_write, dumps, read_json
from ..states import ExperimentState, StepState
from ..workspace import Workspace
from . import run_record

LISTED = (ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.COMPLETED,
          ExperimentState.FAILED)
CACHE_VERSION = 3
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


class ViewCache:
    """Views of run records, kept in ``Misc/cache/views.json`` between calls."""

    def __init__(self, ws: Workspace) -> None:
        self.path = ws.misc / "cache" / "views.json"
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        try:
            data = read_json(self.path)
            if data.get("version") == CACHE_VERSION:
                self.entries = data["entries"]
        except (OSError, ValueError, AttributeError, KeyError):
            pass

    def view(self, output_dir: Path | None) -> dict[str, Any] | None:
        """The view of the record in ``output_dir`` (side files laid over a running one),
        or None when there is no readable record."""
        if output_dir is None:
            return None
        path = run_record.record_path(output_dir)
        try:
            st = os.stat(path)
        except OSError:
            return None
        key, stamp = str(output_dir), [st.st_mtime_ns, st.st_size]
        hit = self.entries.get(key)
        if hit is not None and hit[:2] == stamp:
            view = hit[2]
        else:
            try:
                view = view_of(run_record.RunRecord.from_json(read_json(path)).to_json())
            except (OSError, ValueError):
                return None
            self.entries[key] = [*stamp, view]
            self.changed = True
        if view.get("state") == ExperimentState.RUNNING:
            view = run_record.overlay({**view, "tasks": dict(view["tasks"])}, output_dir)
        return view

    def save(self, keep: set[str] | None = None) -> None:
        """Write the cache back if it changed (``keep``: the folders still in use)."""
        if keep is not None:
            stale = set(self.entries) - keep
            for key in stale:
                del self.entries[key]
            self.changed |= bool(stale)
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
            atomic_write(self.path, dumps({"version": CACHE_VERSION, "entries": self.entries},
                                          indent=None), durable=False)
        except OSError:
            pass  # a cache: the next call reads the records again


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


def listed(ws: Workspace) -> Iterator[tuple[ExperimentState, Path, Path | None]]:
    """Every queued, running, completed or failed config and its output folder (None if it
    was never readied), without reading any record."""
    links = ws.registered()
    for state in LISTED:
        for path in ws.config_files(state):
            yield state, path, links.get(path.stem)


def all_experiments(ws: Workspace) -> list[dict[str, Any]]:
    """Every experiment of the workspace that is queued, running, completed or failed."""
    cache = ViewCache(ws)
    rows = [summarize(ws, path.stem, state, path, cache.view(output_dir))
            for state, path, output_dir in listed(ws)]
    cache.save()
    return rows
