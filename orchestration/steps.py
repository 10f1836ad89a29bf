"""Run one step: its attempts, retried by cause, in the experiment's code host.

``run_step`` only runs and reports: each attempt is a fork of the code host; a failed
attempt's cause decides whether it is retried (the task's ``retry_on`` and ``retries``,
after ``retry_delay``); what was written along the way goes through the lifecycle module
(a running file when an attempt starts, the marker when the step is done, the cause of each
failed attempt). What the outcome means for the experiment is the caller's decision.
"""
from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import lifecycle
from .codehost import CodeHost, Zygote
from .config.schema import TaskSpec
from .exceptions import TasksImportError
from .failures import Failure, FailureCause
from .fsutil import HOST
from .gpus import ENV, GpuPool, default_devices
from .plan import Plan
from .records import run_record
from .records.run_record import Marker
from .sandbox import AttemptRequest, ProgressFn

PROGRESS_RECORD_INTERVAL = 1.0
RUNNING_FILE_AFTER = 1.0  # a step this young is not worth a file for `status` (most of the
                          # cost of a trivial step was its files)


@dataclass
class StepOutcome:
    """How a step ended: done (its marker), or failed (the last attempt's failure)."""

    marker: Marker | None
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.marker is not None


class HostPool:
    """The code hosts of this process, one per code folder, started at an experiment's
    first step (from a lean zygote in a slot runner, else by forking this process).

    With ``keep`` (a slot runner) a host outlives its experiment: the next experiment of
    the same code folder reuses it while every file of the code it imported is unchanged,
    so a sweep imports its code once per runner, not once per experiment (each step is
    still a fresh fork of the imported module). One host is kept at a time, and the runner
    lets it go after ``HOST_IDLE_SECONDS`` without an experiment: an idle one holds its
    imports' memory."""

    def __init__(self, zygote: Zygote | None = None, owner: int | None = None,
                 gpus: GpuPool | None = None, keep: bool = False) -> None:
        self.zygote, self.owner, self.keep = zygote, owner, keep
        self.gpus = gpus if gpus is not None else GpuPool(default_devices())
        self.hosts: dict[str, CodeHost] = {}  # by code folder

    def host(self, plan: Plan, log: Path) -> CodeHost:
        """The host for ``plan``'s code (prints at import go to ``log``, the first step's)."""
        folder = str(plan.code_folder)
        host = self.hosts.get(folder)
        if host is not None and (host.dead or not host.unchanged()):
            self._close(folder)
            host = None
        if host is None:
            if self.keep:
                self.close()  # one kept at a time
            host = CodeHost.start(plan.code_folder, owner=self.owner or os.getpid(),
                                  output=log, zygote=self.zygote)
            self.hosts[folder] = host
        return host

    def release(self, plan: Plan) -> None:
        """``plan``'s experiment is done with its host: kept for the next (``keep``), else
        let go."""
        if not self.keep:
            self._close(str(plan.code_folder))

    def close(self) -> None:
        for folder in list(self.hosts):
            self._close(folder)

    def _close(self, folder: str) -> None:
        host = self.hosts.pop(folder, None)
        if host is not None and not host.dead:
            host.close()


class _Live:
    """A running attempt's progress: to the experiment's running file (at most once a
    second: progress can come thousands of times, the file is for ``status``) and on to
    ``forward`` (the Luigi visualiser)."""

    def __init__(self, plan: Plan, task_id: str, forward: ProgressFn | None) -> None:
        self.plan, self.task_id, self.forward = plan, task_id, forward
        self.info: dict = {}
        self.last = 0.0

    def begin(self, attempt: int, started: float, gpus: list[str]) -> None:
        """An attempt starts; its running file is written once it has run a while (or at its
        first progress report)."""
        self.info = {"attempts": attempt, "started": started, "attempt_started": time.time(),
                     "host": HOST, "gpus": gpus or None}
        self.last = time.monotonic()

    def write(self) -> None:
        lifecycle.step_progress(self.plan, self.task_id, self.info)

    def __call__(self, fraction: float, message: str | None = None) -> None:
        if self.forward is not None:
            self.forward(fraction, message)
        now = time.monotonic()
        if now - self.last >= PROGRESS_RECORD_INTERVAL or "progress" not in self.info:
            self.last = now
            self.info["progress"] = {"fraction": fraction, "message": message,
                                     "at": time.time()}
            self.write()


def _stamped(text: str) -> str:
    return f"=== {datetime.datetime.now().isoformat(timespec='seconds')} {text}"


def _note(log: Path, *texts: str) -> None:
    with open(log, "a") as fh:
        fh.writelines(f"{_stamped(text)}\n" for text in texts)


def run_step(plan: Plan, task: TaskSpec, pool: HostPool,
             forward: ProgressFn | None = None) -> StepOutcome:
    """Run ``task`` of ``plan`` until it is done or its failure is final (see module doc)."""
    log = run_record.log_path(plan.output_dir, task.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    live = _Live(plan, task.id, forward)
    # attempts are numbered, and retries used up, across runs: an interrupted run (a
    # stopped worker) neither costs a retry nor gives back the ones used before it
    started = time.time()
    attempt, counted = plan.earlier_attempts.get(task.id, 0), plan.earlier_counted.get(task.id, 0)
    while True:
        attempt += 1
        with pool.gpus.lease(task.gpus, lambda: _note(log, f"waiting for {task.gpus} free "
                             f"GPU(s) of {','.join(pool.gpus.devices)}")) as gpus:
            live.begin(attempt, started, gpus)
            begun = (f"attempt {attempt} of {attempt + task.retries - counted} on {HOST}"
                     + (f", GPU {','.join(gpus)}" if gpus else ""))
            outcome_seconds = time.monotonic()
            try:
                host = pool.host(plan, log)
            except TasksImportError as exc:
                _note(log, begun, str(exc))
                failure = Failure(FailureCause.EXCEPTION, f"TasksImportError: {exc}",
                                  attempt=attempt, ended=time.time())
                outcome = None
            else:
                request = AttemptRequest(
                    log=str(log), attempt=attempt, timeout=task.timeout,
                    stall_after=task.stall_after, stall_kill=task.stall_action == "kill",
                    cwd=str(plan.code_folder), env={ENV: ",".join(gpus)},
                    code_folder=str(plan.code_folder), header=_stamped(begun))
                outcome = host.call("run", task.method, plan.task_config(task), task.entry,
                                    plan.output_dir, request, live,
                                    still_running=(RUNNING_FILE_AFTER, live.write))
                failure = outcome.failure
            if outcome is not None and outcome.ok:
                marker = Marker(task.id, task.method, plan.snapshot, plan.inputs[task.id],
                                started, time.time(), outcome.seconds, attempt, HOST,
                                outcome.result, gpus or None, outcome.warnings)
                try:
                    lifecycle.step_completed(plan, marker)
                    return StepOutcome(marker, None)
                except OSError as exc:  # a full disk: without its marker the step is not done
                    failure = Failure(FailureCause.MARKER_WRITE, f"run() returned but its "
                                      f"marker could not be saved: {exc}", attempt=attempt,
                                      seconds=time.monotonic() - outcome_seconds,
                                      ended=time.time())
        assert failure is not None
        _note(log, f"attempt {attempt} of {attempt + task.retries - counted} failed: "
              f"{failure.cause.value}: {failure.detail}")
        if failure.cause.infrastructure:
            return StepOutcome(None, failure)  # back to the queue; never uses up retries
        failure.counted = failure.cause in task.retry_on
        lifecycle.attempt_failed(plan, task.id, failure)
        counted += failure.counted
        if not failure.counted or counted > task.retries:
            return StepOutcome(None, failure)
        if task.retry_delay:
            time.sleep(task.retry_delay)  # the user's retry_delay, by design
