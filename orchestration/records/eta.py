"""How long is left: step durations learned from run records, live progress, free workers.

The estimate for a method is the mean duration of its steps, weighted towards the most
recent (the code and the data change over a sweep; a run from last month says less than the
one from an hour ago). Ranks, not clock time, set the weights, so the estimator needs no time
scale: a sweep of one-second steps and one of one-day steps behave alike. The samples are
finished steps and the running steps that report progress (``elapsed / fraction``, as of
their last report): finished steps alone would be biased short while a sweep runs, since
its short steps finish first and its long ones are still running. A running step blends its
own projection with the method's estimate, trusting its own more as it advances. The total
is a list schedule: running experiments keep their workers, queued ones take the next free
one, in the order workers claim them.

Everything here works on plain run-record dicts and a ``now``, so the benchmark can replay
synthetic sweeps through exactly the code ``status`` uses.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from ..states import StepState

HALF_LIFE_RUNS = 8  # a sample's weight halves for every 8 newer samples of its method
MIN_LIVE_FRACTION = 0.02  # progress below this says more about start-up than about speed
# A running step weighs its own rate against the history of its method as if the history
# were PRIOR_FRACTION of progress already seen: at 40% done, a run four times slower than
# the ones before is believed 89% (a plain fraction-weighted blend said 40%, and showed 14 s
# left where 24 s remained).
PRIOR_FRACTION = 0.05
Sample = list[Any]  # [method, ended, seconds] of one finished step


class History:
    """Per-method duration estimates, learned from run records."""

    def __init__(self) -> None:
        # per method: (when it was known, seconds) of finished and of projected steps
        self._samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._cache: dict[str, float | None] = {}
        self._finished: set[str] = set()  # methods with a finished step: real history
        self.rough = False  # some estimate stands on a method no step of which has finished

    def learn(self, record: dict, live: bool = False) -> None:
        """Take the finished steps of ``record``; with ``live``, also its running steps'
        projections (only for experiments a live worker is running)."""
        self.add(finished_samples(record))
        if not live:
            return
        for task in record.get("tasks", {}).values():
            if task.get("state") == StepState.RUNNING:
                projected = _projected_total(task)
                if projected is not None:
                    self._samples[task["method"]].append((task["progress"]["at"], projected))

    def add(self, finished: Iterable[Sample]) -> None:
        """Take finished steps as ``finished_samples`` lists them."""
        self._cache.clear()
        for method, ended, seconds in finished:
            self._samples[method].append((ended, seconds))
            self._finished.add(method)

    def estimate(self, method: str) -> float | None:
        """Expected seconds for one step of ``method``; None when nothing is known."""
        if method not in self._cache:
            self._cache[method] = self._compute(method)
        return self._cache[method]

    def has_finished(self, method: str) -> bool:
        """Whether a step of ``method`` has finished: its estimate is history, not only the
        projections of running steps."""
        return method in self._finished

    def rough_estimate(self, method: str) -> float | None:
        """``estimate``, or while ``method`` has no history yet, the mean of the methods
        that have some (a rough answer from the first minute, flagged ``rough``)."""
        found = self.estimate(method)
        if found is not None:
            return found
        known = [e for e in (self.estimate(m) for m in list(self._samples)) if e is not None]
        if not known:
            return None
        self.rough = True
        return sum(known) / len(known)

    def _compute(self, method: str) -> float | None:
        samples = self._samples.get(method)
        if not samples:
            return None
        samples.sort()
        n = len(samples)
        weights = [0.5 ** ((n - 1 - i) / HALF_LIFE_RUNS) for i in range(n)]
        return sum(w * s for w, (_, s) in zip(weights, samples)) / sum(weights)


def finished_samples(record: dict) -> list[Sample]:
    """``[method, ended, seconds]`` of each finished step of ``record`` (lists: they are
    kept in the view cache as JSON)."""
    return [[task["method"], task.get("ended") or 0.0, float(task["seconds"])]
            for task in record.get("tasks", {}).values()
            if task.get("state") == StepState.COMPLETED and task.get("seconds") is not None]


def _projected_total(task: dict) -> float | None:
    """How long a running step will take in all, from its last progress report."""
    progress = task.get("progress") or {}
    fraction, at, started = progress.get("fraction"), progress.get("at"), task.get(
        "attempt_started")
    if not fraction or fraction < MIN_LIVE_FRACTION or at is None or started is None:
        return None
    return max(0.0, at - started) / fraction


def step_remaining(task: dict, history: History, now: float, live: bool) -> float | None:
    """Seconds left for one unfinished step; ``live`` when a live worker is running it. Until
    a step of its method has finished, the answer is flagged rough (``history.rough``)."""
    if not history.has_finished(task["method"]):
        history.rough = True  # only running steps' rates (or other methods') to go by
    expected = history.estimate(task["method"])
    running = live and task.get("state") == StepState.RUNNING and task.get("attempt_started")
    projected = _projected_total(task) if running else None
    if projected is not None:
        if expected is None:
            total = projected  # its own rate only
        else:
            weight = task["progress"]["fraction"] / (task["progress"]["fraction"]
                                                      + PRIOR_FRACTION)
            total = weight * projected + (1 - weight) * expected
    else:
        total = history.rough_estimate(task["method"])
        if total is None or not running:
            return total
    return max(0.0, total - (now - task["attempt_started"]))


@dataclass(frozen=True)
class Estimate:
    """One experiment: steps done of total, seconds spent on them, seconds left (or None)."""

    done: int
    total: int
    spent: float
    remaining: float | None

    @property
    def fraction(self) -> float:
        """Share of the work done: by time when the time left is known, else by steps."""
        if self.remaining is not None and self.spent + self.remaining > 0:
            return self.spent / (self.spent + self.remaining)
        return self.done / self.total if self.total else 1.0


def estimate(record: dict, history: History, now: float, live: bool) -> Estimate:
    """What is left of one experiment. ``live``: a live worker runs it now (its running
    step keeps its elapsed time); otherwise every unfinished step starts from scratch."""
    tasks = list(record.get("tasks", {}).values())
    done = [t for t in tasks if t.get("state") == StepState.COMPLETED]
    spent = sum(t.get("seconds") or 0.0 for t in done)
    remaining: float | None = 0.0
    for task in tasks:
        if task.get("state") == StepState.COMPLETED:
            continue
        if live and task.get("state") == StepState.RUNNING and task.get("attempt_started"):
            spent += max(0.0, now - task["attempt_started"])
        left = step_remaining(task, history, now, live)
        remaining = None if left is None or remaining is None else remaining + left
    return Estimate(len(done), len(tasks), spent, remaining)


def makespan(running: Iterable[float], queued: Iterable[float], slots: int) -> float:
    """When the last experiment ends: running ones hold their slots, queued ones (in claim
    order) start on the first slot to free up; ``slots`` is at least the number running."""
    free = list(running)
    free += [0.0] * (max(slots, 1) - len(free))  # idle workers
    heapq.heapify(free)
    for work in queued:
        heapq.heappush(free, heapq.heappop(free) + work)
    return max(free)


@dataclass(frozen=True)
class Forecast:
    """Seconds left for each unfinished experiment (None: unknown) and until the last one
    ends (None if any is unknown)."""

    per_experiment: dict[str, float | None]
    total: float | None
    rough: bool = False  # some estimate stands on a step's own rate or a fallback only


def forecast(history: History, unfinished: Iterable[tuple[str, dict | None]], live: set[str],
             now: float) -> Forecast:
    """Estimate the queued and running experiments, ``(name, run record)`` in claim order,
    with what ``history`` learned from every record. ``live`` names the running ones a live
    worker holds: they keep their worker; the others (queued, or their worker died) start
    over when a worker is free."""
    per: dict[str, float | None] = {}
    running, queued = [], []
    for name, record in unfinished:
        left = None if record is None else estimate(record, history, now,
                                                    live=name in live).remaining
        per[name] = left
        (running if name in live else queued).append(left)
    if any(left is None for left in running + queued):
        return Forecast(per, None, history.rough)
    return Forecast(per, makespan(running, queued, slots=max(1, len(running))),
                    history.rough)
