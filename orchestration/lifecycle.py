"""Every state change of an experiment, each in one documented, crash-safe order.

An experiment's state is the folder its config is in; its run record says what happened on
the way. Each transition below writes the record and moves the config, always in the order
its docstring gives, and the *commit point* is a single ``os.rename`` (or, for a step, the
atomic write of its marker). So a kill -9 between any two writes leaves one of a few known
states, and ``reconcile`` (run by every worker at start and on every reap) repairs each:

==================  =======================================  ===================================
transition          writes, in order (commit point *)        a kill between them leaves / repair
==================  =======================================  ===================================
queue               name link, output folder + record,       config still in ConfigSources: the
                    stale error file gone, *rename to        next ``ready`` commits it again
                    ConfigsToRun                             (nothing ran; the record is redone)
reject              error file, *rename to ConfigsFailed      still in ConfigSources: judged again
claim               *rename to ConfigsInProgress, owner       a claim without (live) owner: dead,
                    file, record "running" + attempt          so reconcile requeues it
step_progress       running file (in place, not fsynced)      stale running file: removed at the
                                                             next claim
step_completed      *marker (fsynced), running file gone      a marker is the whole proof; the
                                                             record catches up from markers
attempt_failed      record: the failure                       history only; the outcome decides
complete            record "completed" (fsynced),             dead claim whose record says
                    *rename to ConfigsCompleted, owner gone   completed: reconcile finishes the
                                                             move
fail                record "failed" (fsynced), error file,    dead claim whose record says failed:
                    *rename to ConfigsFailed, owner gone      reconcile finishes the move
requeue             record "queued" (running step: its        dead claim: requeued again
                    failure noted, not counted), *rename to
                    ConfigsToRun, owner gone
retry               record "queued" (fsynced), *rename to     record queued, config failed: the
                    ConfigsToRun, error file gone             user runs ``retry`` again
==================  =======================================  ===================================

Owner and error files with no config beside them are removed by ``reconcile``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import claims, containment
from .failures import Failure, FailureCause
from .exceptions import OrchestrationError
from .fsutil import HOST, TMP_MARK, atomic_write, dumps, read_json, remove_stale_temp_files
from .plan import Plan
from .records import run_record
from .records.run_record import Marker, RunRecord
from .states import ExperimentState, StepState
from .workspace import Workspace

Q, R, C, F = (ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.COMPLETED,
              ExperimentState.FAILED)


@dataclass(frozen=True)
class Claim:
    """A running experiment this process holds: its config in ConfigsInProgress."""

    ws: Workspace
    name: str
    path: Path
    number: int  # which claim of the experiment this is (1 for its first run)


# --- ready -----------------------------------------------------------------------------------
def queue(ws: Workspace, source: Path, record: RunRecord) -> Path:
    """A validated config becomes a queued experiment (``ready``, ``rerun``)."""
    output_dir = Path(record.output_dir)
    link = ws.link(record.name)
    if link.is_symlink():
        link.unlink()  # a crash of an earlier commit, or a name freed since (``ready`` checks)
    ws.register(record.name, output_dir)
    (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    run_record.meta_dir(output_dir).mkdir(exist_ok=True)
    run_record.write(output_dir, record)
    ws.error_file(source).unlink(missing_ok=True)
    return ws.move(source, Q)


def reject(ws: Workspace, source: Path, reason: str) -> Path:
    """A config ``ready`` refused: to ConfigsFailed, its reason beside it."""
    atomic_write(ws.error_file(source), reason.rstrip() + "\n")
    if source.parent == ws.folder(F):
        return source
    return ws.move(source, F)


# --- a run -----------------------------------------------------------------------------------
def claim(ws: Workspace, path: Path, holder: int,
          lease: float = claims.DEFAULT_LEASE_SECONDS,
          note: Callable[[RunRecord], None] = lambda record: None) -> Claim | None:
    """Take the queued config ``path`` for a run by ``holder`` (the pid whose life the claim
    follows); None when another worker got it first.

    Only a rename that succeeds wins. A failed one may be NFS reporting ENOENT for a retried
    rename that did succeed, but it may just as well be another worker's win whose owner file
    is not written yet: taking the claim then would run the experiment twice. So a failed
    rename always loses; in the rare NFS case the config sits in ConfigsInProgress with no
    owner file and ``reconcile`` queues it again after ``NO_OWNER_GRACE_SECONDS``. ``note``
    adds to the record update (the code-state recheck)."""
    dest = ws.folder(R) / path.name
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None  # lost the race: normal
    def change(record: RunRecord) -> None:
        record.state = R
        record.attempts.append({"host": HOST, "pid": holder, "started": time.time()})
        note(record)

    try:
        claims.write_owner(ws, path.stem, holder, lease)
        output_dir = ws.output_dir(path.stem)
        for folder in (output_dir, run_record.meta_dir(output_dir)):
            remove_stale_temp_files(folder)  # the claim means no other run writes there now
        for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
            stale.unlink(missing_ok=True)
        record = _update(output_dir, change, durable=False)
    except OSError:  # a full disk, say: queued is true, claimed by nobody is not
        _move_claimed(ws, path.stem, Q)
        raise
    return Claim(ws, path.stem, dest, len(record.attempts))


def step_progress(plan: Plan, task_id: str, live: dict) -> None:
    """A running step's attempt and progress, for ``status`` (at most once a second). Written
    in place, not atomically and not fsynced: it is rewritten often, and a reader that finds
    it half-written skips it."""
    try:
        with open(run_record.running_path(plan.output_dir, task_id), "w") as fh:
            fh.write(dumps(live, indent=None))
    except OSError:  # only readers use it: a full disk must not fail the step for it
        pass


def step_completed(plan: Plan, marker: Marker) -> None:
    """The step is done: its marker is the commit point.

    One fsync, the marker file's: without it a power cut could leave a renamed, empty marker
    (not allowed: done, and no result). The folder's fsync is not needed for the promise:
    without it a power cut can lose the rename, and the step runs again (at least once is
    what we promise). Raises OSError (a full disk) without a marker in place."""
    atomic_write(plan.marker(marker.id), dumps(marker.to_json()), sync_folder=False)
    plan.done[marker.id] = marker
    run_record.running_path(plan.output_dir, marker.id).unlink(missing_ok=True)


def attempt_failed(plan: Plan, task_id: str, failure: Failure) -> None:
    """Keep a failed attempt's cause in the step's history (it may be retried)."""
    def change(record: RunRecord) -> None:
        record.tasks[task_id].failures.append(failure)

    try:
        _update(plan.output_dir, change, durable=False)
    except OSError:
        pass  # history: losing it on a full disk costs nothing the run needs


def complete(ws: Workspace, name: str) -> None:
    """Every step is done: record, then the move to ConfigsCompleted."""
    output_dir = ws.output_dir(name)

    def change(record: RunRecord) -> None:
        record.sync_markers(output_dir)
        record.state, record.ended = C, time.time()
        record.error = record.failure = None

    _update(output_dir, change)
    for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
        stale.unlink(missing_ok=True)
    _move_claimed(ws, name, C)


def fail(ws: Workspace, name: str, reason: str, failure: Failure | None = None,
         step: str | None = None) -> None:
    """The run failed for good (a step used up its retries, or the experiment cannot run):
    record, error file, then the move to ConfigsFailed. Raises OSError when even that cannot
    be written (a full disk): the caller gives the claim back instead."""
    def change(record: RunRecord) -> None:
        record.sync_markers(output_dir)
        if step is not None and failure is not None:
            entry = record.tasks[step]
            entry.state, entry.error, entry.ended = StepState.FAILED, failure.detail, time.time()
            entry.attempts, entry.seconds = failure.attempt, failure.seconds
            entry.progress = entry.attempt_started = None
        record.state, record.ended, record.error = F, time.time(), reason.strip()
        record.failure = None if failure is None else {
            "step": step, "cause": failure.cause.value, "detail": failure.detail,
            "attempts": failure.attempt}

    try:
        output_dir = ws.output_dir(name)
        _update(output_dir, change)
        for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
            stale.unlink(missing_ok=True)
    except (FileNotFoundError, ValueError, OrchestrationError):
        pass  # never readied, or a damaged record: the error file is all there is to say
    path = ws.folder(R) / f"{name}.yaml"
    found = ws.find(name)
    if found is not None:
        path = found[1]
    atomic_write(ws.error_file(path), reason.rstrip() + "\n")
    _move_claimed(ws, name, F)


def requeue(ws: Workspace, name: str, cause: FailureCause, why: str) -> bool:
    """Put a claimed experiment back in the queue: what stopped it (``interrupted``,
    ``lost``) was not its fault, so its running step's attempt is noted but not counted, and
    its finished steps stay finished. False when the config was no longer claimed."""
    output_dir = ws.output_dir(name)

    def change(record: RunRecord) -> None:
        record.overlay_steps(output_dir)
        for step in record.tasks.values():
            if step.state is StepState.RUNNING:
                step.failures.append(Failure(cause, why, attempt=step.attempts, counted=False,
                                             ended=time.time()))
                step.state, step.progress, step.attempt_started = StepState.PENDING, None, None
        if record.state is not C:  # killed before its final move: reconcile completes it
            record.state = Q

    try:
        _update(output_dir, change, durable=False)
    except (OSError, ValueError):
        pass  # no record or a full disk: the move below is what matters
    for stale in run_record.meta_dir(output_dir).glob("*.running.json"):
        stale.unlink(missing_ok=True)
    return _move_claimed(ws, name, Q)


# --- after a run -----------------------------------------------------------------------------
def retry(ws: Workspace, name: str, path: Path, change: Callable[[RunRecord], None]) -> Path:
    """A failed experiment back in the queue: its failed steps pending again, finished
    ones kept; ``change`` adds what re-validation found (a new snapshot or code state)."""
    output_dir = ws.output_dir(name)

    def reset(record: RunRecord) -> None:
        change(record)
        record.sync_markers(output_dir)
        for step in record.tasks.values():
            if step.state is not StepState.COMPLETED:
                step.state, step.error, step.progress = StepState.PENDING, None, None
        record.state, record.error, record.failure = Q, None, None
        record.retried_at = time.time()

    _update(output_dir, reset)
    dest = ws.move(path, Q)
    ws.error_file(path).unlink(missing_ok=True)
    return dest


# --- repair ----------------------------------------------------------------------------------
def reconcile(ws: Workspace, lease: float = claims.DEFAULT_LEASE_SECONDS) -> list[str]:
    """Repair what a crash left (see the table above); returns what it did, in words."""
    done = []
    for state in ExperimentState:
        remove_stale_temp_files(ws.folder(state))
    done += [f"killed what a dead worker's steps left running ({group})"
             for group in containment.reap_dead_workers()]
    done += reap_dead(ws, lease)
    for path in ws.config_files(Q):  # completed by an older version, never moved
        record = _record(ws, path.stem)
        if record is not None and record.state is C and ws.move(path, C, missing_ok=True):
            done.append(f"{path.stem}: had completed; moved to {C.folder}")
    _remove_orphans(ws)
    return done


def reap_dead(ws: Workspace, lease: float) -> list[str]:
    """Claims whose worker died: finish a move the record shows was decided, else put the
    experiment back in the queue (``lost``). Returns what it did."""
    done = []
    for path in ws.config_files(R):
        if not claims.take_over(ws, path, lease):
            continue
        name = path.stem
        record = _record(ws, name)
        if record is not None and record.state is C:
            _move_claimed(ws, name, C)
            done.append(f"{name}: had completed; moved to {C.folder}")
        elif record is not None and record.state is F:
            if not ws.error_file(path).exists():
                atomic_write(ws.error_file(path), (record.error or "failed") + "\n")
            _move_claimed(ws, name, F)
            done.append(f"{name}: had failed; moved to {F.folder}")
        elif requeue(ws, name, FailureCause.LOST, "its worker died; another worker took the "
                     "claim") if record is not None else _move_claimed(ws, name, Q):
            done.append(f"{name}: its worker died; queued again (finished steps are kept)")
    return done


def _remove_orphans(ws: Workspace) -> None:
    """Owner and error files whose config is gone (a crash after the move)."""
    for state, suffix in ((R, ".owner.json"), (F, ".error.txt")):
        configs = {p.stem for p in ws.config_files(state)}
        for side in ws.folder(state).glob(f"*{suffix}"):
            if side.name[:-len(suffix)] not in configs and not side.name.startswith(TMP_MARK):
                side.unlink(missing_ok=True)


# --- helpers ---------------------------------------------------------------------------------
def _update(output_dir: Path, change: Callable[[RunRecord], None],
            durable: bool = True) -> RunRecord:
    return run_record.update(output_dir, change, durable=durable)


def _record(ws: Workspace, name: str) -> RunRecord | None:
    """The stored record (no side files laid over it), or None when there is none to read."""
    try:
        return RunRecord.from_json(read_json(run_record.record_path(ws.output_dir(name))))
    except (OSError, ValueError, OrchestrationError):
        return None


def _move_claimed(ws: Workspace, name: str, to: ExperimentState) -> bool:
    """The commit point of a run's end: the claimed config to ``to``; then its owner file
    goes. False when the config was not claimed any more (another process moved it)."""
    moved = False
    for suffix in (".yaml", ".yml"):
        if ws.move(ws.folder(R) / f"{name}{suffix}", to, missing_ok=True):
            moved = True
            break
    claims.owner_file(ws, name).unlink(missing_ok=True)
    return moved
