"""Progress in the Luigi visualiser: each running step reports its own, and its experiment's.

Luigi lets only a *running* task report progress, and while its steps run an Experiment task
is merely pending. So the running Step also writes the experiment-level view ("2/3 steps,
train 40%, ~1m20s left" and a percentage) onto its Experiment's task, through the scheduler
connection Luigi gave the step; the visualiser then doubles as a dashboard. Updates are
throttled (with luigid each one is an HTTP request) and never fail a step. The estimate
learns from the experiment's own record at first; only a step that runs for a while pays
for reading other experiments' records (a trivial step would double its cost).
"""
from __future__ import annotations

import heapq
import html
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable

from luigi.rpc import RemoteScheduler

from ..failures import Failure
from ..plan import Plan
from ..records import eta, run_record
from ..reporter import duration
from ..states import StepState

LUIGI_INTERVAL = 1.0  # seconds between two updates sent to the scheduler
HISTORY_RECORDS = 200  # recent run records an estimate learns from (status reads them all)
HISTORY_AFTER_SECONDS = 5.0  # a step running this long learns from other experiments too

_log = logging.getLogger(__name__)


class LuigiProgress:
    """Callable as a step's progress sink: ``progress(fraction, message)``."""

    def __init__(self, step: Any, plan: Plan, experiment_id: str) -> None:
        self.step, self.plan, self.experiment_id = step, plan, experiment_id
        self.scheduler = _scheduler_of(step)
        self.history: eta.History | None = None
        self.started = time.monotonic()
        self.last = float("-inf")
        self.broken = False

    def __call__(self, fraction: float, message: str | None = None) -> None:
        if time.monotonic() - self.last >= LUIGI_INTERVAL:
            self.update(fraction, message)

    def update(self, fraction: float | None = None, message: str | None = None,
               failure: Failure | None = None) -> None:
        """Send the step's and the experiment's progress now (at a step's start and end,
        and from ``__call__``); ``failure``: the step failed, its message says why."""
        if not isinstance(self.scheduler, RemoteScheduler) or self.broken:
            return  # outside a Luigi worker, or a local scheduler: no visualiser to show it
        try:
            if failure is not None:
                self.step.set_status_message(html.escape(
                    f"failed: {failure.cause.value}: {failure.detail}"))
            elif fraction is not None:
                self.last = time.monotonic()
                self.step.set_progress_percentage(round(fraction * 100))
                self.step.set_status_message(html.escape(message or f"{fraction:.0%}"))
            if self.experiment_id:
                text, percent = self.experiment_view(fraction, failure)
                self.scheduler.set_task_status_message(self.experiment_id, text)
                self.scheduler.set_task_progress_percentage(self.experiment_id, percent)
        except Exception:  # noqa: BLE001 - a dashboard update must never fail a step
            # nor stall it: with luigid gone each call retries for a minute, and the step's
            # watcher (timeout, output) waits meanwhile; so give up on the dashboard
            self.broken = True
            _log.debug("progress update failed", exc_info=True)

    def experiment_view(self, fraction: float | None, failure: Failure | None = None
                        ) -> tuple[str, int]:
        """The experiment's status message and percentage, from its run record with this
        step's live progress (or its failure) laid over it."""
        record = run_record.load(self.plan.output_dir).to_json()
        step = record["tasks"].get(self.step.step)
        if step is not None and step.get("state") == StepState.RUNNING and fraction is not None:
            step["progress"] = {"fraction": fraction, "at": time.time()}
        estimate = eta.estimate(record, self._history(record), time.time(), live=True)
        parts = [f"{estimate.done}/{estimate.total} steps"]
        state = (step or {}).get("state")
        if failure is not None:
            parts.append(f"{self.step.step} failed ({failure.cause.value})")
        elif state == StepState.FAILED:
            parts.append(f"{self.step.step} failed")
        elif state != StepState.COMPLETED:
            parts.append(f"{self.step.step} {fraction:.0%}" if fraction is not None
                         else f"{self.step.step} running")
        ended = failure is not None or state == StepState.FAILED  # no time left to tell
        if estimate.remaining is not None and estimate.done < estimate.total and not ended:
            parts.append(f"~{duration(estimate.remaining)} left")
        return html.escape(", ".join(parts)), round(estimate.fraction * 100)

    def _history(self, own: dict) -> eta.History:
        if self.history is not None:
            return self.history
        if time.monotonic() - self.started < HISTORY_AFTER_SECONDS:
            history = eta.History()  # this experiment's finished steps: free, and often enough
            history.learn(own)
            return history
        self.history = eta.History()  # once per step run
        for record in recent_records(self.plan.ws.registered().values(), HISTORY_RECORDS):
            self.history.learn(record)
        return self.history


def recent_records(output_dirs: Iterable[Path], limit: int) -> list[dict]:
    """The ``limit`` most recently written run records among ``output_dirs``: history
    enough for one experiment's estimate, without reading a large workspace's every record."""
    stamped = []
    for folder in output_dirs:
        path = run_record.record_path(folder)
        try:
            stamped.append((os.stat(path).st_mtime, str(path)))
        except OSError:
            continue
    records = []
    for _, path in heapq.nlargest(limit, stamped):
        try:
            with open(path, "rb") as fh:
                records.append(json.loads(fh.read()))
        except (OSError, ValueError):
            continue
    return records


def _scheduler_of(step: Any) -> Any:
    """The scheduler connection behind a running task's ``set_status_message``: a bound
    method of Luigi's TaskStatusReporter, which keeps it as ``_scheduler``. It is the only
    handle on the scheduler a task gets (local or luigid, the same calls)."""
    reporter = getattr(step.set_status_message, "__self__", None)
    return getattr(reporter, "_scheduler", None)
