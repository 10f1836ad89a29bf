"""The worker: claim configs one by one and run each as its own small Luigi graph.

One Luigi graph per experiment keeps Luigi's scheduling cost flat (its cost grows with the
graph's size; benchmarks/overhead.py). Each experiment runs in a forked *runner* process, so user
code imported for one experiment never leaks into the next and a crash in it costs one
experiment. Luigi and our pipeline are imported here, before the fork, so a runner starts
warm. Up to ``workers`` runners go at once. The worker process itself runs no user code;
it claims, watches runners, beats the claims' heartbeats and does the final bookkeeping.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import luigi
from luigi.execution_summary import LuigiStatusCode
from luigi.rpc import RPCError

from . import claims
from .adaptive import hooks as search_hooks  # hook: search
from .exceptions import OrchestrationError, WorkspaceError
from .fsutil import remove_stale_temp_files
from .pipeline import Experiment
from .pipeline.execute import StepFailed, claim_for_run, note_ended
from .pipeline.isolation import die_with_parent
from .records import run_record
from .records.provenance import ProvenanceCache
from .records.run_provenance import RECHECK_SECONDS
from .states import ExperimentState
from .workspace import Workspace

POLL_SECONDS = 2.0
REAP_EVERY_POLLS = 5  # look for claims of dead workers every 5 polls, not only at start
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)  # a runner ended by these was stopped, not broken
RESOURCE_WAIT_SECONDS = 1.0
EXIT_SCHEDULER_UNREACHABLE = 3


@dataclass
class WorkerReport:
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Runner:
    name: str
    path: Path
    pid: int
    pidfd: int
    started: float


def reconcile(ws: Workspace, lease: float = claims.DEFAULT_LEASE_SECONDS) -> list[str]:
    """Repair what a crash left: temp files, claims of dead workers, and runs whose record
    says completed but whose config never made the final move. Returns what it did."""
    done = []
    for state in ExperimentState:
        remove_stale_temp_files(ws.folder(state))
    done += requeue_dead(ws, lease)
    for path in ws.config_files(ExperimentState.QUEUED):
        try:
            record = run_record.load(ws.output_dir(path.stem))
        except (WorkspaceError, ValueError, OSError):
            continue
        if record.get("state") == "completed":
            try:
                claims.finish(ws, path, ExperimentState.COMPLETED)
            except FileNotFoundError:
                continue  # another worker starting at the same time moved it
            done.append(f"{path.stem}: had completed; moved to {ExperimentState.COMPLETED.folder}")
    return done + search_hooks.reconcile(ws)  # hook: search


def requeue_dead(ws: Workspace, lease: float) -> list[str]:
    """Put the claims of dead workers back in the queue; returns what it did."""
    done = []
    for name in claims.requeue_dead(ws, lease):
        note_ended(ws, name, "queued")
        done.append(f"{name}: its worker died; queued again (finished steps are kept)")
    return done


def _claim_number(ws: Workspace, name: str) -> str:
    """Which claim of the experiment this run is (1 for its first): part of its Luigi task
    ids, so luigid never confuses a step left RUNNING by a killed worker (luigid waits
    ``worker_disconnect_delay`` before it lets go of it) with the same step run again."""
    return str(len(run_record.load(ws.output_dir(name)).get("attempts", [])))


def _runner_main(ws: Workspace, name: str, scheduler_url: str | None) -> int:
    """Body of a runner process: one ``luigi.build`` of one experiment."""
    die_with_parent()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    logging.getLogger("luigi-interface").addFilter(_hide_step_failures)
    kwargs = {"scheduler_url": scheduler_url} if scheduler_url else {"local_scheduler": True}
    experiment = Experiment(str(ws.root), name, claim=_claim_number(ws, name))
    while True:
        try:
            result = luigi.build([experiment], detailed_summary=True,
                                 workers=1, log_level="WARNING", **kwargs)
        except RPCError:  # luigid went away mid-run: Luigi raises this instead of reporting it
            return EXIT_SCHEDULER_UNREACHABLE
        if result.status is not LuigiStatusCode.NOT_RUN or not scheduler_url:
            break  # a local scheduler holds a step back only for a resource it can never give
        # luigid held a step back (its resources are in use by another worker's step). A Luigi
        # worker without keep_alive gives up at once; with it, it would also wait out a failed
        # step's retry_delay. So ask again until it is our turn.
        time.sleep(RESOURCE_WAIT_SECONDS)
    if result.status is LuigiStatusCode.SCHEDULING_FAILED and scheduler_url:
        try:  # only a luigid that stopped answering is not the experiment's fault
            check_scheduler(scheduler_url)
        except OrchestrationError:
            return EXIT_SCHEDULER_UNREACHABLE
    return 0 if result.status in (LuigiStatusCode.SUCCESS,
                                  LuigiStatusCode.SUCCESS_WITH_RETRY) else 1


def unreachable(url: str) -> str:
    return f"cannot reach the Luigi scheduler at {url}; start it with `job-orchestration scheduler`"


def check_scheduler(url: str, timeout: float = 10.0) -> None:
    """Stop before claiming anything when luigid is not there. Luigi's client retries each
    call for about a minute (``[core] rpc-retry-attempts`` x ``rpc-retry-wait``), which is
    right for riding out a luigid restart mid-run, not for a scheduler that never started."""
    if not url.startswith(("http://", "https://")):
        return  # e.g. http+unix://: left to Luigi's client
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # something answered
    except (OSError, ValueError) as exc:  # URLError is an OSError
        raise OrchestrationError(f"{unreachable(url)} ({getattr(exc, 'reason', exc)})") from None


def _hide_step_failures(record: logging.LogRecord) -> bool:
    """A failed step is already reported (and its traceback is in its log): spare the
    terminal Luigi's second copy of it."""
    return not (record.exc_info and isinstance(record.exc_info[1], StepFailed))


def _fork_runner(ws: Workspace, name: str, path: Path, scheduler_url: str | None) -> _Runner:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _runner_main(ws, name, scheduler_url)
        except BaseException:
            logging.getLogger("orchestration").exception("runner for %s crashed", name)
        finally:
            os._exit(code)
    return _Runner(name, path, pid, os.pidfd_open(pid), time.time())


class Worker:
    """Drains the queue; ``run()`` returns when the queue is empty (``exit_when_empty``) or
    after ``stop()`` (SIGTERM/Ctrl-C), releasing unfinished claims."""

    def __init__(self, ws: Workspace, workers: int = 1, scheduler_url: str | None = None,
                 exit_when_empty: bool = False, poll: float = POLL_SECONDS,
                 lease: float = claims.DEFAULT_LEASE_SECONDS,
                 on_event: Callable[[str], None] = lambda msg: None) -> None:
        self.ws, self.workers, self.scheduler_url = ws, max(1, workers), scheduler_url
        self.exit_when_empty, self.poll, self.lease, self.on_event = (
            exit_when_empty, poll, lease, on_event)
        self.report = WorkerReport()
        self.running: dict[int, _Runner] = {}
        self.stopping = False
        self.provenance = ProvenanceCache(max_age=RECHECK_SECONDS)
        self.candidates: list[Path] = []  # the queue as last listed, claimed front to back

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> WorkerReport:
        if self.scheduler_url:
            check_scheduler(self.scheduler_url)
        for msg in reconcile(self.ws, self.lease):
            self.on_event(msg)
        if not self.exit_when_empty:
            self.on_event(f"worker {os.getpid()} on {claims.HOST} is waiting for configs; "
                          "Ctrl-C stops it (unfinished experiments go back to the queue)")
        last_beat = last_reap = time.monotonic()
        while True:
            if time.monotonic() - last_reap > self.poll * REAP_EVERY_POLLS:
                for msg in requeue_dead(self.ws, self.lease) + search_hooks.reconcile(
                        self.ws):  # hook: search
                    self.on_event(msg)
                last_reap = time.monotonic()
            if not self.stopping:
                self._fill()
            if not self.running and (self.stopping or self.exit_when_empty):
                break
            self._wait()
            if time.monotonic() - last_beat > self.poll:
                claims.heartbeat(self.ws, [r.name for r in self.running.values()])
                last_beat = time.monotonic()
            if self.stopping and self.running:
                self._release_all()
        return self.report

    def _fill(self) -> None:
        while len(self.running) < self.workers:
            claimed = self._claim_next()
            if claimed is None:
                return
            runner = _fork_runner(self.ws, claimed.stem, claimed, self.scheduler_url)
            self.running[runner.pidfd] = runner
            self.on_event(f"{claimed.stem}: started")

    def _claim_next(self) -> Path | None:
        """Claim the next queued config. The queue folder is listed again only when the
        last listing is used up: listing it for every claim made a long queue quadratic."""
        listed = False
        while True:
            if not self.candidates:
                if listed:
                    return None
                self.candidates = self.ws.config_files(ExperimentState.QUEUED)[::-1]
                listed = True
                continue
            claimed = claim_for_run(self.ws, self.candidates.pop(), self.lease,
                                    self.provenance)
            if claimed is not None:
                return claimed

    def _wait(self) -> None:
        try:
            ready, _, _ = select.select(list(self.running), [], [], self.poll)
        except InterruptedError:
            return
        for fd in ready:
            runner = self.running.pop(fd)
            os.close(fd)
            _, status = os.waitpid(runner.pid, 0)
            self._finished(runner, status)

    def _finished(self, runner: _Runner, status: int) -> None:
        found = self.ws.find(runner.name)
        state = found[0] if found else None
        seconds = time.time() - runner.started
        if state is ExperimentState.RUNNING:
            code = os.waitstatus_to_exitcode(status)
            interrupted = os.WIFSIGNALED(status) and os.WTERMSIG(status) in INTERRUPTS
            if code == EXIT_SCHEDULER_UNREACHABLE or self.stopping or interrupted:
                if code == EXIT_SCHEDULER_UNREACHABLE:
                    why = "the Luigi scheduler could not be reached"
                elif self.stopping:
                    why = "the worker is stopping"
                else:
                    why = f"its runner was stopped by {signal.Signals(-code).name}"
                self._give_back(runner.name, found[1], why)
                if code == EXIT_SCHEDULER_UNREACHABLE and not self.stopping:
                    self.report.errors.append(unreachable(self.scheduler_url))
                    self.stopping = True
                return
            reason = (f"the run ended without finishing (runner exit status {code}); see "
                      f"the step logs in {self.ws.output_dir(runner.name) / 'logs'}")
            try:
                claims.finish(self.ws, found[1], ExperimentState.FAILED, reason)
                note_ended(self.ws, runner.name, "failed", reason)
            except OSError as exc:  # a full disk, say: the failure cannot be written down
                self._give_back(runner.name, found[1], f"its failure could not be recorded "
                                                       f"({exc})")
                self.report.errors.append(f"cannot record the outcome of {runner.name}: {exc}; "
                                          f"free space in {self.ws.root}, then run the worker "
                                          "again")
                self.stopping = True
                return
            state = ExperimentState.FAILED
        if state is ExperimentState.COMPLETED:
            self.report.completed.append(runner.name)
            self.on_event(f"{runner.name}: completed in {seconds:.1f} s")
        else:
            self.report.failed.append(runner.name)
            error = self.ws.error_file(runner.path)
            why = error.read_text().strip() if error.exists() else "failed"
            self.on_event(f"{runner.name}: FAILED after {seconds:.1f} s: {why}")
        for msg in search_hooks.experiment_ended(self.ws, runner.name):  # hook: search
            self.on_event(msg)

    def _give_back(self, name: str, path: Path, why: str) -> None:
        """Put a claim back in the queue: what stopped it was not the experiment's fault."""
        claims.release(self.ws, path)
        note_ended(self.ws, name, "queued")
        self.report.released.append(name)
        self.on_event(f"{name}: put back in the queue: {why}")

    def _release_all(self) -> None:
        for runner in self.running.values():
            try:
                os.kill(runner.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
