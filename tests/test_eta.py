"""The estimator on hand-built run records: what it learns, and how it combines it."""
from __future__ import annotations

import pytest

from orchestration.records import eta

NOW = 1_000_000.0


def done(method: str, seconds: float, ended: float) -> dict:
    return {"method": method, "state": "completed", "seconds": seconds, "ended": ended}


def running(method: str, elapsed: float, fraction: float | None = None) -> dict:
    task = {"method": method, "state": "running", "attempt_started": NOW - elapsed}
    if fraction is not None:
        task["progress"] = {"fraction": fraction, "at": NOW}
    return task


def pending(method: str) -> dict:
    return {"method": method, "state": "pending"}


def record(*tasks: dict) -> dict:
    return {"tasks": {str(i): {"id": str(i), **t} for i, t in enumerate(tasks)}}


def history(*records: dict, live: bool = False) -> eta.History:
    h = eta.History()
    for r in records:
        h.learn(r, live=live)
    return h


def test_recent_runs_weigh_more():
    old = [record(done("Train", 10, ended=i)) for i in range(10)]
    recent = history(*old, record(done("Train", 100, ended=99)))
    plain_mean = (10 * 10 + 100) / 11
    weights = [0.5 ** ((10 - i) / eta.HALF_LIFE_RUNS) for i in range(11)]  # newest: 1
    expected = (sum(w * 10 for w in weights[:10]) + 100) / sum(weights)
    assert recent.estimate("Train") == pytest.approx(expected)
    assert recent.estimate("Train") > plain_mean + 3
    early = history(record(done("Train", 100, ended=-1)), *old)
    assert early.estimate("Train") < plain_mean
    assert history(*old).estimate("Train") == pytest.approx(10)
    assert history(*old).estimate("Unknown") is None


def test_running_step_blends_its_progress_with_history():
    h = history(record(done("Train", 20, ended=1)))
    # a quarter done after 10 s projects 40 s; history says 20 s. Its own rate weighs
    # 0.25 / (0.25 + 0.05) = 5/6: 5/6*40 + 1/6*20 = 36.7 s in all, 26.7 s left
    assert eta.step_remaining(running("Train", 10, 0.25), h, NOW, live=True) == pytest.approx(
        80 / 3)
    assert not h.rough
    # no history: its own projection alone, flagged rough
    assert eta.step_remaining(running("New", 10, 0.25), h, NOW, live=True) == pytest.approx(30)
    assert h.rough
    # no progress: history minus elapsed, never below zero
    assert eta.step_remaining(running("Train", 5), h, NOW, live=True) == pytest.approx(15)
    assert eta.step_remaining(running("Train", 50), h, NOW, live=True) == 0
    # a step nobody runs any more starts over
    assert eta.step_remaining(running("Train", 10, 0.25), h, NOW, live=False) == 20


def test_a_method_never_finished_is_learned_from_live_progress():
    live_run = record(done("Prep", 2, ended=1), running("Train", 30, 0.5))
    h = history(live_run, live=True)
    assert h.estimate("Train") == pytest.approx(60)
    queued = record(pending("Prep"), pending("Train"))
    assert eta.estimate(queued, h, NOW, live=False).remaining == pytest.approx(62)
    assert h.rough  # Train's estimate is a running step's rate: rough until one finishes
    settled = history(record(done("Train", 60, ended=1)))
    eta.estimate(record(pending("Train")), settled, NOW, live=False)
    assert not settled.rough
    rough = eta.estimate(record(pending("Eval")), h, NOW, live=False).remaining
    assert rough == pytest.approx(31) and h.rough  # no history: the others' mean, flagged
    assert eta.estimate(record(pending("Eval")), eta.History(), NOW, live=False
                        ).remaining is None


def test_a_run_much_slower_than_its_history_is_believed_as_it_advances():
    """The first-hour report: history says 10 s; this run goes 4x slower. At 40% after 16 s,
    24 s are left (the old fraction-weighted blend said 14 s)."""
    h = history(record(done("Train", 10, ended=1)))
    left = eta.step_remaining(running("Train", 16, 0.4), h, NOW, live=True)
    assert 20 < left < 24.5


def test_experiment_estimate_counts_steps_and_time():
    h = history(record(done("A", 10, 1), done("B", 30, 2)))
    est = eta.estimate(record(done("A", 10, 1), running("B", 15)), h, NOW, live=True)
    assert (est.done, est.total) == (1, 2)
    assert est.remaining == pytest.approx(15)
    assert est.fraction == pytest.approx(25 / 40)


def test_makespan_fills_free_workers_in_claim_order():
    assert eta.makespan([5, 1], [3, 3], slots=2) == 7   # 1+3=4, then 4+3=7 (5 ends first)
    assert eta.makespan([], [3, 3, 3], slots=1) == 9
    assert eta.makespan([], [], slots=1) == 0
    assert eta.makespan([2], [10], slots=3) == 10       # idle slots take queued work


def test_forecast_counts_live_workers_and_restarts_dead_ones():
    h = history(record(done("A", 10, 1)))
    unfinished = [("live", record(running("A", 4))), ("dead", record(running("A", 4))),
                  ("q1", record(pending("A"))), ("q2", record(pending("A")))]
    f = eta.forecast(h, unfinished, live={"live"}, now=NOW)
    assert f.per_experiment == {"live": 6, "dead": 10, "q1": 10, "q2": 10}
    assert f.total == pytest.approx(36)  # one live worker: 6, then 10 + 10 + 10
    rough = eta.forecast(h, [*unfinished, ("new", record(pending("B")))], {"live"}, NOW)
    assert rough.per_experiment["new"] == 10 and rough.rough  # as A's, until B has history
    unknown = eta.forecast(eta.History(), [("new", record(pending("B")))], set(), NOW)
    assert unknown.per_experiment["new"] is None and unknown.total is None
