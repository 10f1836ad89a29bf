"""The run record: one JSON file per experiment, ``Output/<outputDir>/run.json``.

It holds the snapshot that runs (resolved config and its hash), the code state, and every
step's state, times, attempts, return value and log path. ``status``, ``show``, ``results``
and ``diff`` read it through ``load``. It is rewritten at the few moments an experiment
changes state (ready, claim, failure, completion), read-modify-write under an ``flock`` and
atomically; in between, steps report to small side files in ``.orchestration/`` (a marker
when done, a running file while running) that ``load`` lays over a running record.
"""
from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any, Callable

from ..config.schema import ExperimentSpec
from ..exceptions import WorkspaceError
from ..fsutil import atomic_write_json, locked, read_json
from ..workspace import Workspace

RECORD_NAME = "run.json"
META_DIR = ".orchestration"  # markers, running files and the lock, out of the user's way
FORMAT = 1


def record_path(output_dir: Path) -> Path:
    return output_dir / RECORD_NAME


def meta_dir(output_dir: Path) -> Path:
    return output_dir / META_DIR


def log_path(output_dir: Path, task_id: str) -> Path:
    return output_dir / "logs" / f"{task_id}.log"


def config_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def new_record(name: str, spec: ExperimentSpec, output_dir: Path, source_bytes: bytes,
               provenance: dict, environment: dict, warnings: list[str]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": name,
        "state": "queued",
        "output_dir": str(output_dir),
        "config": spec.data,
        "config_sha256": config_hash(spec.data),
        "source_sha256": hashlib.sha256(source_bytes).hexdigest(),
        "readied_at": time.time(),
        "readied_on": socket.gethostname(),
        "provenance": provenance,
        "environment": environment,
        "warnings": warnings,
        "attempts": [],
        "tasks": {t.id: {"id": t.id, "method": t.method, "state": "pending", "attempts": 0,
                         "log": str(log_path(output_dir, t.id))} for t in spec.tasks},
    }


def marker_path(output_dir: Path, task_id: str) -> Path:
    """A step's marker: written atomically, and only, after its ``run()`` returned."""
    return meta_dir(output_dir) / f"{task_id}.done.json"


def running_path(output_dir: Path, task_id: str) -> Path:
    """A running step's attempt and progress: small, rewritten often, never fsynced."""
    return meta_dir(output_dir) / f"{task_id}.running.json"


def apply_done(record: dict[str, Any], done: dict[str, Any]) -> None:
    """Copy a step's marker into the record."""
    entry = record["tasks"][done["id"]]
    entry.update(state="done", seconds=done["seconds"], started=done["started"],
                 ended=done["ended"], result=done["result"], host=done["host"],
                 attempts=done.get("attempts", entry.get("attempts", 0)))
    for key in ("error", "progress", "attempt_started"):
        entry.pop(key, None)


def sync_markers(output_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Bring the record up to date with the markers of the steps that finished."""
    for task_id, entry in record.get("tasks", {}).items():
        if entry.get("state") != "done":
            try:
                apply_done(record, read_json(marker_path(output_dir, task_id)))
            except (OSError, ValueError):
                continue
    return record


def overlay_steps(output_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Lay the steps' side files over the record of a running experiment.

    While an experiment runs, its steps report to their marker and running files rather
    than rewriting the whole record for every step (that cost more than the step itself for
    short steps); the record catches up when the run ends. Readers see both through here.
    """
    for task_id, entry in sync_markers(output_dir, record).get("tasks", {}).items():
        if entry.get("state") != "done":
            try:
                entry.update(read_json(running_path(output_dir, task_id)), state="running")
            except (OSError, ValueError):
                continue
    return record


def load(output_dir: Path) -> dict[str, Any]:
    """The record as readers should see it (a running experiment's steps laid over it)."""
    record = read_json(record_path(output_dir))
    return overlay_steps(output_dir, record) if record.get("state") == "running" else record


def load_named(ws: Workspace, name: str) -> dict[str, Any]:
    """The record of experiment ``name``, or a WorkspaceError a user can act on."""
    ws.locate(name)
    output_dir = ws.output_dir(name)
    try:
        return load(output_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise WorkspaceError(f"experiment {name!r} has no readable run record "
                             f"{record_path(output_dir)} ({type(exc).__name__})") from None


def write(output_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(record_path(output_dir), record)


def update(output_dir: Path, change: Callable[[dict[str, Any]], None],
           durable: bool = True) -> dict[str, Any]:
    """Apply ``change`` to the record under the experiment's lock; returns the new record.

    ``durable=False`` skips the fsyncs where losing the update costs nothing (a claim's note,
    a requeue: the next claim or ``reconcile`` writes it again).
    """
    meta_dir(output_dir).mkdir(exist_ok=True)
    with locked(meta_dir(output_dir) / "lock", 0o644):
        record = read_json(record_path(output_dir))
        change(record)
        atomic_write_json(record_path(output_dir), record, durable=durable)
    return record
