"""The whole workspace at a glance, for ``status``: every experiment as ``show --json`` has
it, plus the time it has left, and when the lot will be done with the workers now running.

Each run record's view is read once (from the view cache when the record did not change)
and no YAML is parsed: the same views give the summaries, the history the estimates learn
from, and the estimates.
"""
from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .. import claims
from ..states import UNFINISHED, ExperimentState
from ..workspace import Workspace
from . import eta
from .summary import ViewCache, listed, summarize


@dataclass
class Overview:
    experiments: list[dict[str, Any]]
    totals: dict[str, int]
    eta_seconds: float | None
    workers: int  # experiments a live worker is running now: the parallelism the ETA assumes
    waiting: int = 0  # configs in ConfigSources that nobody readied
    rough: bool = False  # some estimate rests on a step's own progress only (no history)

    def as_json(self) -> dict[str, Any]:
        return {"experiments": self.experiments, "totals": self.totals,
                "eta_seconds": self.eta_seconds, "workers": self.workers,
                "not_readied": self.waiting, "eta_rough": self.rough}

    @property
    def active(self) -> bool:
        """Anything still queued or running."""
        return any(self.totals.get(state) for state in UNFINISHED)


def collect(ws: Workspace, now: float | None = None) -> Overview:
    """Every experiment with its ``eta_seconds``, the totals per state and the overall ETA.

    One pass: each view is summarised and learned from; only the unfinished ones are kept
    for the forecast."""
    now = time.time() if now is None else now
    live = claims.live_claims(ws, [p.stem for p in ws.config_files(ExperimentState.RUNNING)])
    history = eta.History()
    cache = ViewCache(ws)
    rows, unfinished, used = [], [], set()
    # Parsed JSON has no reference cycles, but the cyclic collector would still walk the
    # growing heap again and again (a third of the time at 10,000 experiments).
    gc.disable()
    try:
        for state, path, output_dir in listed(ws):
            view = cache.view(output_dir)
            if output_dir is not None:
                used.add(str(output_dir))
            info = summarize(ws, path.stem, state, path, view, now=now)
            rows.append(info)
            if view is not None:
                history.learn(view, live=info["name"] in live)
            if state in (ExperimentState.QUEUED, ExperimentState.RUNNING):
                unfinished.append((info["name"], view))
    finally:
        gc.enable()
    cache.save(keep=used)
    forecast = eta.forecast(history, unfinished, live, now)
    for info in rows:
        info["eta_seconds"] = (0.0 if info["state"] == ExperimentState.COMPLETED
                               else _round(forecast.per_experiment.get(info["name"])))
        if info["state"] == ExperimentState.RUNNING:
            info["worker_alive"] = info["name"] in live
    return Overview(rows, dict(Counter(r["state"] for r in rows)), _round(forecast.total),
                    len(live), len(ws.config_files(ExperimentState.NEW)), forecast.rough)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
