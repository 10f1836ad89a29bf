"""What running one step means, apart from Luigi: claim, attempts, marker, record, final move.

Kept out of the Luigi task classes so the same code serves our worker and a plain
``luigi --module orchestration.pipeline ...`` run, and so it can be read without Luigi.
"""
from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import claims
from ..config.schema import ExperimentSpec, TaskSpec, spec_from_snapshot
from ..config.tasks_module import TasksImportError, TasksLoader, task_classes
from ..exceptions import OrchestrationError
from ..fsutil import atomic_write_json, read_json, remove_stale_temp_files
from ..records import run_provenance, run_record
from ..records.provenance import ProvenanceCache
from ..taskbase import prepare
from ..states import ExperimentState
from ..workspace import Workspace
from .isolation import AttemptOutcome, ProgressFn, run_attempt

PROGRESS_RECORD_INTERVAL = 1.0
CLAIM_LOOKS = 3  # a config being moved by a racing process is found at the next look


class StepFailed(Exception):
    """A step failed for good (after its retries); the experiment is already moved."""


@dataclass(frozen=True)
class Plan:
    """A readied experiment as the run sees it: the snapshot taken at ``ready``."""

    ws: Workspace
    name: str
    output_dir: Path
    spec: ExperimentSpec

    @classmethod
    def load(cls, ws: Workspace, name: str) -> "Plan":
        output_dir = ws.output_dir(name)
        try:
            record = run_record.load(output_dir)
        except FileNotFoundError:
            raise OrchestrationError(f"experiment {name!r}: run record "
                                     f"{run_record.record_path(output_dir)} is missing") from None
        return cls(ws, name, output_dir, spec_from_snapshot(record["config"]))

    def marker(self, task_id: str) -> Path:
        return run_record.marker_path(self.output_dir, task_id)


def ensure_claimed(ws: Workspace, name: str) -> Path:
    """The config in ConfigsInProgress, claiming it from the queue if a Luigi run got here
    first; refuses experiments that are finished or failed.

    Under ``luigi --workers N`` two root steps of one experiment start at once, so another
    process may be claiming the config right now: losing that race, or looking while the
    config is between two folders, means look again, not fail the step."""
    for _ in range(CLAIM_LOOKS):
        found = ws.find(name)
        if found is None:
            continue
        state, path = found
        if state is ExperimentState.RUNNING:
            return path
        if state is not ExperimentState.QUEUED:
            break
        if (claimed := claim_for_run(ws, path)) is not None:
            return claimed
    state, _ = ws.locate(name)
    raise OrchestrationError(f"experiment {name!r} is {state.value}, not queued or running"
                             + ("; `job-orchestration retry` queues it again"
                                if state is ExperimentState.FAILED else ""))


def _claim_holder() -> int:
    """The pid whose life a claim follows. Under ``luigi --workers N`` a step runs in a child
    Luigi forks for it and reaps when it ends: the claim belongs to that Luigi worker, else it
    would look dead (and be taken by another worker) as soon as the first step finished."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()


def claim_for_run(ws: Workspace, path: Path, lease: float = claims.DEFAULT_LEASE_SECONDS,
                  provenance: ProvenanceCache | None = None) -> Path | None:
    """Claim a queued config and note the run in its record; None when another worker won.

    Also where the code state is captured again, once per run (see run_provenance), and
    where temp files a killed run left in the output folder go: the claim means no other
    run of the experiment is writing there."""
    claimed = claims.claim(ws, path, pid=_claim_holder(), lease=lease)
    if claimed is None:
        return None
    try:
        output_dir = ws.output_dir(path.stem)
        note_drift = run_provenance.recheck(output_dir, provenance)
    except (OrchestrationError, ValueError, FileNotFoundError) as exc:
        # never readied (copied into the queue by hand) or its record is damaged: a failure
        # of this experiment, not a reason to stop the worker
        claims.finish(ws, claimed, ExperimentState.FAILED, f"cannot run {path.stem}: {exc}; put the "
                      "config in ConfigSources and run `job-orchestration ready`")
        return None
    for folder in (output_dir, run_record.meta_dir(output_dir)):
        remove_stale_temp_files(folder)
    for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
        stale.unlink(missing_ok=True)  # a killed run's: its steps start again

    def change(record: dict) -> None:
        record["state"] = "running"
        record["attempts"].append({"host": claims.HOST, "pid": _claim_holder(),
                                   "started": time.time()})
        note_drift(record)
    try:
        run_record.update(output_dir, change, durable=False)
    except OSError:  # a full disk, say: queued is true, claimed by nobody is not
        claims.release(ws, claimed)
        raise
    return claimed


def note_ended(ws: Workspace, name: str, state: str, error: str | None = None) -> None:
    """Bring the record of a run that ended outside its steps' own bookkeeping (put back in
    the queue, or its runner died) up to date: finished steps synced from their markers, no
    step left "running", and the experiment's new ``state``."""
    def change(record: dict) -> None:
        run_record.sync_markers(output_dir, record)
        if record.get("state") != "completed":  # killed before its final move: reconcile
            record.update(state=state, error=error)  # moves it on by this state

    try:
        output_dir = ws.output_dir(name)
        run_record.update(output_dir, change, durable=False)
        for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
            stale.unlink(missing_ok=True)
    except (OrchestrationError, OSError, ValueError):
        pass  # never readied, no record, or a full disk: nothing to correct


def _stamp() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def run_step(plan: Plan, task: TaskSpec, loader: TasksLoader,
             on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run ``task`` (with its retries) and write its marker; raises StepFailed when it fails."""
    path = ensure_claimed(plan.ws, plan.name)
    marker = plan.marker(task.id)
    if marker.exists():
        return read_json(marker)
    log = run_record.log_path(plan.output_dir, task.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    live = _LiveStep(plan.output_dir, task.id, on_progress)
    outcome = AttemptOutcome(False, 0.0, error="not run")
    attempts = task.retries + 1
    for attempt in range(1, attempts + 1):
        with open(log, "a") as fh:
            fh.write(f"=== {_stamp()} attempt {attempt} of {attempts} on "
                     f"{claims.HOST} (pid {os.getpid()})\n")
        live.begin(attempt)
        outcome = _attempt(plan, task, loader, log, live)
        if outcome.ok:
            break
        with open(log, "a") as fh:
            fh.write(f"=== attempt {attempt} of {attempts} failed: {outcome.error}\n")
    if outcome.ok:
        done = {"id": task.id, "method": task.method, "started": live.started,
                "ended": time.time(), "seconds": outcome.seconds, "attempts": attempt,
                "host": claims.HOST, "result": outcome.result}
        try:
            atomic_write_json(marker, done)
        except OSError as exc:  # a full disk, say: without its marker the step is not done
            outcome = AttemptOutcome(False, outcome.seconds,
                                     error=f"run() returned but its marker was not saved: {exc}")
        else:
            live.end()
            return done
    reason = (f"step {task.id!r} ({task.method}) failed after {attempt} attempt(s): "
              f"{outcome.error}\nlog: {log}\n")
    try:
        run_record.update(plan.output_dir,
                          lambda r: _task_failed(plan.output_dir, r, task.id, attempt, outcome,
                                                 reason))
        live.end()
        claims.finish(plan.ws, path, ExperimentState.FAILED, reason)
    except OSError as exc:  # a full disk, say: the worker decides what to do with the claim
        raise StepFailed(f"{reason.strip()}\nthe failure could not be recorded: {exc}") from None
    raise StepFailed(reason.strip())


def _attempt(plan: Plan, task: TaskSpec, loader: TasksLoader, log: Path,
             progress: "_LiveStep") -> AttemptOutcome:
    try:
        cls = task_classes(loader.load(Path(plan.spec.path_to_tasks)))[task.method]
    except (TasksImportError, KeyError) as exc:
        msg = str(exc) if isinstance(exc, TasksImportError) else (
            f"{task.method} is no longer a TaskBase subclass in Tasks.py")
        with open(log, "a") as fh:
            fh.write(msg + "\n")
        return AttemptOutcome(False, 0.0, error=msg)
    config = plan.spec.task_config(task)
    output_dir = plan.output_dir

    def target(report: ProgressFn) -> Any:
        return prepare(cls(config), config, task.entry, output_dir, report).run()

    return run_attempt(target, log, task.timeout, progress)


def _task_failed(output_dir: Path, record: dict, task_id: str, attempts: int,
                 outcome: AttemptOutcome, reason: str) -> None:
    run_record.sync_markers(output_dir, record)
    record["tasks"][task_id].update(state="failed", error=outcome.error, attempts=attempts,
                                    seconds=outcome.seconds, ended=time.time())
    record.update(state="failed", error=reason.strip(), ended=time.time())


def finalize(plan: Plan) -> None:
    """All steps are done: sync the record from the markers, then move to Completed."""
    state, path = plan.ws.locate(plan.name)
    if state is ExperimentState.COMPLETED:
        return
    def change(record: dict) -> None:
        run_record.sync_markers(plan.output_dir, record)
        record.update(state="completed", ended=time.time())
        record.pop("error", None)

    run_record.update(plan.output_dir, change)
    claims.finish(plan.ws, path, ExperimentState.COMPLETED)


class _LiveStep:
    """A running step's side file (attempt, start, progress) and its forwarding to Luigi.

    Progress goes to Luigi at once and to the file at most once a second: progress can
    arrive thousands of times, and the file is only for ``status`` and ``show``. It is
    written in place, not atomically: a reader that catches it half-written skips it."""

    def __init__(self, output_dir: Path, task_id: str, forward: ProgressFn | None) -> None:
        self.path = run_record.running_path(output_dir, task_id)
        self.forward = forward
        self.started = time.time()
        self.info: dict[str, Any] = {}
        self.last = 0.0

    def begin(self, attempt: int) -> None:
        self.info = {"attempts": attempt, "started": self.started,
                     "attempt_started": time.time(), "host": claims.HOST, "pid": os.getpid()}
        self._write()

    def __call__(self, fraction: float, message: str | None = None) -> None:
        if self.forward is not None:
            self.forward(fraction, message)
        now = time.monotonic()
        if now - self.last >= PROGRESS_RECORD_INTERVAL:
            self.last = now
            self.info["progress"] = {"fraction": fraction, "message": message,
                                     "at": time.time()}
            self._write()

    def _write(self) -> None:
        try:
            self.path.write_text(json.dumps(self.info))
        except OSError:  # only status reads it: a full disk must not fail the step for it
            pass

    def end(self) -> None:
        self.path.unlink(missing_ok=True)
