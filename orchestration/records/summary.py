"""Read side: an experiment as ``show``/``status`` print it, from its folder and run record.

The state comes from the folder the config is in (the source of truth); the rest from the
run record. Configs rejected before they had a record are still listed, with their reason.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

from ..exceptions import WorkspaceError
from ..states import ExperimentState
from ..workspace import Workspace
from . import run_record

LISTED = (ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.COMPLETED, ExperimentState.FAILED)


def _task_rows(record: dict) -> list[dict[str, Any]]:
    rows = []
    now = time.time()
    for task in record.get("tasks", {}).values():
        seconds = task.get("seconds")
        if task.get("state") == "running" and task.get("attempt_started"):
            seconds = now - task["attempt_started"]
        rows.append({"id": task["id"], "method": task["method"], "state": task["state"],
                     "seconds": seconds, "attempts": task.get("attempts", 0),
                     "progress": (task.get("progress") or {}).get("fraction"),
                     "message": (task.get("progress") or {}).get("message"),
                     "result": task.get("result"), "error": task.get("error"),
                     "log": task.get("log")})
    return rows


def summarize(ws: Workspace, name: str, state: ExperimentState, path: Path,
              output_dir: Path | None = None, with_config: bool = True,
              record: dict | None = None) -> dict[str, Any]:
    """The ``show --json`` view of one experiment (``record``: its run record, if the caller
    has read it already)."""
    info: dict[str, Any] = {"name": name, "state": state.value, "config_file": str(path),
                            "commit": None, "dirty": None, "output_dir": None, "tasks": []}
    if state is ExperimentState.FAILED:
        error = ws.error_file(path)
        info["error"] = error.read_text().strip() if error.exists() else None
    try:
        output_dir = output_dir or ws.output_dir(name)
        record = record if record is not None else run_record.load(output_dir)
    except (WorkspaceError, OSError, ValueError):  # not readied: no record to add
        return info
    prov = record.get("provenance") or {}
    info.update(output_dir=str(output_dir), commit=prov.get("commit"), dirty=prov.get("dirty"),
                branch=prov.get("branch"), provenance=prov.get("available", False),
                tasks=_task_rows(record), warnings=record.get("warnings", []),
                readied_at=record.get("readied_at"), ended=record.get("ended"))
    if run_prov := record.get("run_provenance"):  # the code changed between ready and run
        info.update(run_commit=run_prov.get("commit"), run_dirty=run_prov.get("dirty"))
    started = [a["started"] for a in record.get("attempts", [])]
    info["started"] = started[0] if started else None
    if with_config:
        info["config"] = record.get("config")
    return info


def listed(ws: Workspace) -> Iterator[tuple[ExperimentState, Path, Path | None]]:
    """Every queued, running, completed or failed config and its output folder (None if it
    was never readied), without reading any record."""
    links = ws.registered()
    for state in LISTED:
        for path in ws.config_files(state):
            yield state, path, links.get(path.stem)


def all_experiments(ws: Workspace) -> list[dict[str, Any]]:
    """Every experiment of the workspace that is queued, running, completed or failed."""
    return [summarize(ws, path.stem, state, path, output_dir, with_config=False)
            for state, path, output_dir in listed(ws)]
