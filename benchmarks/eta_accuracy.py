"""How right is the ETA of ``status``? Replays synthetic sweeps with known step durations
through the very code ``status`` uses (``orchestration.eta``) and reports the error of the
overall ETA at 25%, 50% and 75% of each sweep's true duration.

Method: run records are built directly instead of running steps (the estimator reads nothing
but run records), so a sweep of hours replays in milliseconds and the true answer is known
exactly. A sweep is N experiments of three steps (prepare, train, eval) claimed in name
order by W workers. Every step takes its method's base duration times lognormal noise
(``--sigma``); in the "mixed" scenario train also scales with a swept model size (x0.5, x1,
x2, cycling), so history alone cannot know one experiment's train time. train reports
linear progress, which reaches the record once a second as in a real run; prepare and eval
report none. "warm" starts with one earlier run of the same methods in the history; "cold"
learns only from the sweep itself.

    python benchmarks/eta_accuracy.py                      # 24 x 3 steps, 3 workers, 50 seeds
    python benchmarks/eta_accuracy.py --experiments 200 --workers 8 --seeds 20
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
from dataclasses import dataclass

from orchestration.records import eta

METHODS = [("prepare", 30.0, False), ("train", 600.0, True), ("eval", 120.0, False)]
SIZES = (0.5, 1.0, 2.0)
POINTS = (0.25, 0.50, 0.75)


@dataclass
class Step:
    method: str
    start: float
    end: float
    reports_progress: bool


def make_sweep(n: int, workers: int, sigma: float, mixed: bool, rng: random.Random
               ) -> tuple[list[list[Step]], float]:
    """Each experiment's steps with start/end times as W workers would run them."""
    free = [0.0] * workers
    sweep = []
    for i in range(n):
        slot = min(range(workers), key=free.__getitem__)
        t = free[slot]
        steps = []
        for method, base, progress in METHODS:
            scale = SIZES[i % len(SIZES)] if mixed and method == "train" else 1.0
            seconds = base * scale * math.exp(rng.gauss(0, sigma))
            steps.append(Step(method, t, t + seconds, progress))
            t += seconds
        free[slot] = t
        sweep.append(steps)
    return sweep, max(free)


def record_at(steps: list[Step], now: float) -> dict:
    """The run record of one experiment as it reads at ``now``."""
    tasks = {}
    for step in steps:
        task = {"id": step.method, "method": step.method, "state": "pending"}
        if step.end <= now:
            task.update(state="completed", seconds=step.end - step.start, ended=step.end)
        elif step.start <= now:
            task.update(state="running", attempt_started=step.start)
            reported = step.start + math.floor(now - step.start)  # written once a second
            if step.reports_progress and reported > step.start:
                task["progress"] = {"fraction": (reported - step.start) /
                                    (step.end - step.start), "at": reported}
        tasks[step.method] = task
    return {"tasks": tasks}


def eta_at(sweep: list[list[Step]], now: float, warm: bool) -> float | None:
    """The overall ETA ``status`` would print at ``now`` (the forecast code path)."""
    history = eta.History()
    if warm:  # one earlier run of the same methods, at base durations
        history.learn({"tasks": {m: {"method": m, "state": "completed", "seconds": base,
                                     "ended": -1.0} for m, base, _ in METHODS}})
    records = [(f"e{i:04d}", record_at(steps, now)) for i, steps in enumerate(sweep)]
    live = set()
    for name, record in records:
        states = {t["state"] for t in record["tasks"].values()}
        if "running" in states:
            live.add(name)
        history.learn(record, live=name in live)
    unfinished = [(name, r) for name, r in records
                  if any(t["state"] != "completed" for t in r["tasks"].values())]
    return eta.forecast(history, unfinished, live, now).total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=24)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.15, help="lognormal noise per step")
    parser.add_argument("--seeds", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.experiments} experiments x {len(METHODS)} steps, {args.workers} workers, "
          f"noise sigma {args.sigma}, {args.seeds} seeds; error = (ETA - true time left) / "
          "true time left")
    print(f"{'scenario':<14}{'progress':>9}{'mean |err|':>12}{'median err':>12}"
          f"{'worst |err|':>13}{'unknown':>9}")
    for mixed in (False, True):
        for warm in (True, False):
            errors: dict[float, list[float]] = {p: [] for p in POINTS}
            unknown = dict.fromkeys(POINTS, 0)
            for seed in range(args.seeds):
                sweep, total = make_sweep(args.experiments, args.workers, args.sigma, mixed,
                                          random.Random(seed))
                for p in POINTS:
                    estimate = eta_at(sweep, p * total, warm)
                    truth = total - p * total
                    if estimate is None:
                        unknown[p] += 1
                    else:
                        errors[p].append((estimate - truth) / truth)
            name = f"{'mixed' if mixed else 'uniform'}/{'warm' if warm else 'cold'}"
            for p in POINTS:
                errs = errors[p] or [math.nan]
                print(f"{name:<14}{p:>9.0%}{statistics.mean(map(abs, errs)):>12.1%}"
                      f"{statistics.median(errs):>+12.1%}{max(map(abs, errs)):>13.1%}"
                      f"{unknown[p]:>9}")


if __name__ == "__main__":
    main()
