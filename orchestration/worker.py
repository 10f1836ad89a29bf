"""The worker: claim configs and hand them to its slot runners, keep their claims alive.

The worker process is lean (it never imports Luigi nor user code): it claims, beats the
heartbeat of its claims, reaps the claims of dead workers, and starts the notifier when an
experiment ends. Each of its ``--workers N`` slots is a runner process (``runner.py``) that
runs the experiments it is given one after another; a runner that dies costs the one
experiment it was running (queued again when something stopped it from outside, failed when
it crashed), and the worker starts another.
"""
from __future__ import annotations

import json
import os
import select
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import claims, lifecycle
from .adaptive import hooks as search_hooks
from .exceptions import OrchestrationError, SchedulerUnreachable
from .failures import FailureCause
from .fsutil import HOST
from .notify import DEFAULT_TIMEOUT, Notifier
from .records import run_provenance
from .records.provenance import ProvenanceCache
from .records.run_record import RunRecord
from .runner import RunEnd, RunnerSettings, runner_main
from .states import ExperimentState
from .workspace import Workspace

POLL_SECONDS = 2.0
REAP_EVERY_POLLS = 5  # look for claims of dead workers every 5 polls, not only at start


@dataclass
class WorkerReport:
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped_by: int | None = None  # the signal that stopped the worker


@dataclass
class _Slot:
    """One runner process and what it is running."""

    pid: int
    pidfd: int
    commands: int
    events: int
    buffer: bytes = b""
    running: str | None = None
    started: float = 0.0


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
        raise SchedulerUnreachable(f"{unreachable(url)} ({getattr(exc, 'reason', exc)})"
                                   ) from None


def unreachable(url: str | None) -> str:
    return f"cannot reach the Luigi scheduler at {url}; start it with `job-orchestration scheduler`"


class Worker:
    """Drains the queue; ``run()`` returns when the queue is empty (``exit_when_empty``) or
    after ``stop()`` (SIGTERM/Ctrl-C), putting unfinished experiments back in the queue."""

    def __init__(self, ws: Workspace, workers: int = 1, scheduler_url: str | None = None,
                 exit_when_empty: bool = False, poll: float = POLL_SECONDS,
                 lease: float = claims.DEFAULT_LEASE_SECONDS, gpus: list[str] | None = None,
                 slots_per_gpu: int = 1, notify: list[str] | None = None,
                 notify_timeout: float = DEFAULT_TIMEOUT,
                 on_event: Callable[[str], None] = lambda msg: None) -> None:
        self.ws, self.workers, self.exit_when_empty = ws, max(1, workers), exit_when_empty
        self.poll, self.lease, self.on_event = poll, lease, on_event
        self.settings = RunnerSettings(str(ws.root), scheduler_url, tuple(gpus or ()),
                                       slots_per_gpu, os.getpid())
        self.notifier = Notifier(notify, notify_timeout, on_event)
        self.report = WorkerReport()
        self.slots: list[_Slot] = []
        self.stopping = False
        self.provenance = ProvenanceCache(max_age=run_provenance.RECHECK_SECONDS)
        self.candidates: list[Path] = []  # the queue as last listed, claimed front to back
        self.said_ownerless = False  # told the user it waits for an ownerless claim

    def stop(self, signum: int = signal.SIGTERM, *_: object) -> None:
        self.stopping = True
        self.report.stopped_by = self.report.stopped_by or signum

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> WorkerReport:
        if self.settings.scheduler_url:
            check_scheduler(self.settings.scheduler_url)
        for msg in lifecycle.reconcile(self.ws, self.lease) + search_hooks.reconcile(self.ws):
            self.on_event(msg)
        if not self.exit_when_empty:
            self.on_event(f"worker {os.getpid()} on {HOST} is waiting for configs; Ctrl-C "
                          "stops it (unfinished experiments go back to the queue)")
        last_beat = last_reap = time.monotonic()
        try:
            while True:
                if time.monotonic() - last_reap > self.poll * REAP_EVERY_POLLS:
                    for msg in (lifecycle.reap_dead(self.ws, self.lease)
                                + search_hooks.reconcile(self.ws)):
                        self.on_event(msg)
                    last_reap = time.monotonic()
                if not self.stopping:
                    self._fill()
                if not self._busy() and (self.stopping or (
                        self.exit_when_empty and not self._undecided())):
                    break
                self._wait()
                self.notifier.poll()
                if time.monotonic() - last_beat > self.poll:
                    claims.heartbeat(self.ws, [s.running for s in self.slots if s.running])
                    last_beat = time.monotonic()
                if self.stopping and self._busy():
                    self._stop_runners()
        finally:
            self._close_runners()
            self.notifier.finish()
        return self.report

    def _busy(self) -> bool:
        return any(slot.running for slot in self.slots)

    def _undecided(self) -> bool:
        """Whether a claim has no owner file yet: the queue is not known to be empty until
        its owner appears or the grace passes and it is reaped (then it is run here)."""
        waiting = claims.ownerless(self.ws)
        if waiting and not self.said_ownerless:
            self.said_ownerless = True
            self.on_event(f"{', '.join(waiting)}: claimed but no worker named as its owner "
                          f"yet; waiting (up to {claims.NO_OWNER_GRACE_SECONDS:g} s) to run "
                          "it here if its claimer died")
        return bool(waiting)

    def _fill(self) -> None:
        while sum(1 for s in self.slots if s.running) < self.workers and not self.stopping:
            claimed = self._claim_next()
            if claimed is None:
                return
            try:
                slot = self._free_slot()
                os.write(slot.commands, json.dumps({"run": claimed.name,
                                                    "claim": claimed.number}).encode() + b"\n")
            except OSError as exc:  # no runner could start (out of processes, say)
                lifecycle.requeue(self.ws, claimed.name, FailureCause.INTERRUPTED,
                                  f"no runner process could start: {exc}")
                self.report.errors.append(f"cannot start a runner process: {exc}")
                self.stopping = True
                return
            slot.running, slot.started = claimed.name, time.time()
            self.on_event(f"{claimed.name}: started")

    def _claim_next(self) -> lifecycle.Claim | None:
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
            path = self.candidates.pop()
            try:
                claimed = lifecycle.claim(self.ws, path, os.getpid(), self.lease,
                                          note=self._recheck(path.stem))
            except (OrchestrationError, ValueError) as exc:
                self._unrunnable(path, exc)
                continue
            if claimed is not None:
                return claimed

    def _recheck(self, name: str) -> Callable[[RunRecord], None]:
        """The code state captured again at claim time (see run_provenance)."""
        return run_provenance.recheck(self.ws.output_dir(name), self.provenance)

    def _unrunnable(self, path: Path, exc: Exception) -> None:
        """A queued config the worker cannot run (never readied: copied into the queue by
        hand, or its record is damaged): that experiment fails, the worker goes on."""
        name = path.stem
        why = (f"cannot run {name}: {exc}; put the config in ConfigSources and run "
               "`job-orchestration ready`")
        try:
            found = self.ws.find(name)  # queued still, or claimed when the claim stopped
            if found is not None and found[0] is ExperimentState.QUEUED:
                self.ws.move(found[1], ExperimentState.RUNNING)  # out of every worker's way
            lifecycle.fail(self.ws, name, why)
        except OSError:  # taken by another worker meanwhile, or a full disk
            return
        self.report.failed.append(name)
        self.on_event(f"{name}: FAILED: {why}")

    # --- runners ----------------------------------------------------------------------------
    def _free_slot(self) -> _Slot:
        for slot in self.slots:
            if slot.running is None:
                return slot
        slot = self._start_runner()
        self.slots.append(slot)
        return slot

    def _start_runner(self) -> _Slot:
        cmd_read, cmd_write = os.pipe()
        ev_read, ev_write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(cmd_write)
            os.close(ev_read)
            for slot in self.slots:  # another runner's pipes are not ours to hold
                for fd in (slot.commands, slot.events, slot.pidfd):
                    os.close(fd)
            runner_main(self.settings, cmd_read, ev_write, parent)
        os.close(cmd_read)
        os.close(ev_write)
        return _Slot(pid, os.pidfd_open(pid), cmd_write, ev_read)

    def _wait(self) -> None:
        fds = [s.events for s in self.slots] + [s.pidfd for s in self.slots]
        try:
            ready, _, _ = select.select(fds, [], [], self.poll)
        except InterruptedError:
            return
        for slot in list(self.slots):
            if slot.events in ready:
                self._read_events(slot)
            if slot.pidfd in ready and slot in self.slots:
                self._runner_died(slot)

    def _read_events(self, slot: _Slot) -> None:
        chunk = os.read(slot.events, 65536)
        if not chunk:
            return  # the runner is exiting: its pidfd says how
        slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "ended" in message:
                slot.running = None
                self._ended(message["ended"], RunEnd(message["end"]), message.get("why"),
                            time.time() - slot.started, message.get("notify", True))

    def _runner_died(self, slot: _Slot) -> None:
        _, status = os.waitpid(slot.pid, 0)
        self.slots.remove(slot)
        for fd in (slot.pidfd, slot.commands, slot.events):
            os.close(fd)
        if slot.running is None:
            return
        name = slot.running
        if os.WIFSIGNALED(status) or self.stopping:
            why = ("the worker is stopping" if self.stopping else
                   f"its runner was stopped by {signal.Signals(os.WTERMSIG(status)).name}")
            self._give_back(name, why)
        else:
            self._ended(name, RunEnd.CRASHED, f"its runner process ended unexpectedly (exit status "
                        f"{os.waitstatus_to_exitcode(status)}); see the worker's output",
                        time.time() - slot.started)

    def _stop_runners(self) -> None:
        for slot in self.slots:
            if slot.running:
                try:
                    os.kill(slot.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def _close_runners(self) -> None:
        """Idle runners: closing their command pipe ends them."""
        for slot in list(self.slots):
            os.close(slot.commands)
            os.waitpid(slot.pid, 0)
            os.close(slot.pidfd)
            os.close(slot.events)
        self.slots = []

    # --- ends -------------------------------------------------------------------------------
    def _ended(self, name: str, end: RunEnd, why: str | None, seconds: float,
               notify: bool = True) -> None:
        """An experiment's runner is done with it (``notify``: its config has a notifier)."""
        if end is RunEnd.UNREACHABLE:
            self._give_back(name, "the Luigi scheduler could not be reached")
            self.report.errors.append(unreachable(self.settings.scheduler_url))
            self.stopping = True
            return
        if end is RunEnd.UNRECORDED:
            self._give_back(name, "its failure could not be recorded")
            self.report.errors.append(f"cannot record the outcome of {name}: {why}; free space"
                                      f" in {self.ws.root}, then run the worker again")
            self.stopping = True
            return
        if end is RunEnd.CRASHED:
            try:
                lifecycle.fail(self.ws, name, why or "its runner crashed")
            except OSError as exc:
                self._give_back(name, f"its failure could not be recorded ({exc})")
                self.stopping = True
                return
        found = self.ws.find(name)
        final = found[0] if found else None
        if final is ExperimentState.COMPLETED:
            self.report.completed.append(name)
            self.on_event(f"{name}: completed in {seconds:.1f} s")
        elif final is ExperimentState.FAILED:
            self.report.failed.append(name)
            error = self.ws.error_file(found[1])  # type: ignore[index]
            text = error.read_text().strip() if error.exists() else "failed"
            self.on_event(f"{name}: FAILED after {seconds:.1f} s: {text}")
        else:
            self.report.released.append(name)
            self.on_event(f"{name}: put back in the queue ({why or 'interrupted'})")
            return
        if notify or self.notifier.command:  # the record is read only for a notifier
            try:
                self.notifier.ended(RunRecord.load(self.ws.output_dir(name)))
            except (OSError, ValueError, OrchestrationError):
                pass
        for msg in search_hooks.experiment_ended(self.ws, name):  # a trial: tell its study
            self.on_event(msg)

    def _give_back(self, name: str, why: str) -> None:
        """Put a claim back in the queue: what stopped it was not the experiment's fault."""
        if lifecycle.requeue(self.ws, name, FailureCause.INTERRUPTED, why):
            self.report.released.append(name)
            self.on_event(f"{name}: put back in the queue: {why}")
