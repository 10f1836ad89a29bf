"""The whole workspace at a glance, for ``status``: every experiment as ``show --json`` has
it, plus the time it has left, and when the lot will be done with the workers now running.

Each run record's view is read once (from the view cache when the record did not change)
and no YAML is parsed: the same views give the summaries, the history the estimates learn
from, and the estimates.
"""
from __future__ import annotations

import functools
import gc
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .. import claims
from ..states import UNFINISHED, ExperimentState
from ..workspace import Workspace
from . import eta
from .summary import ViewCache, compact, listed, summarize


@dataclass
class Overview:
    rows: list[dict[str, Any] | str]  # a completed experiment's row stays JSON text (cached)
    totals: dict[str, int]
    eta_seconds: float | None
    workers: int  # experiments a live worker is running now: the parallelism the ETA assumes
    waiting: int = 0  # configs in ConfigSources that nobody readied
    rough: bool = False  # some estimate rests on a step's own progress only (no history)

    @functools.cached_property
    def experiments(self) -> list[dict[str, Any]]:
        """Every row as a dict (the completed ones parsed only now, when asked for)."""
        return [json.loads(row) if isinstance(row, str) else row for row in self.rows]

    def _rest(self) -> dict[str, Any]:
        return {"totals": self.totals, "eta_seconds": self.eta_seconds, "workers": self.workers,
                "not_readied": self.waiting, "eta_rough": self.rough}

    def as_json(self) -> dict[str, Any]:
        return {"experiments": self.experiments, **self._rest()}

    def as_text(self, **extra: Any) -> str:
        """``as_json`` (plus ``extra`` keys) as one line of JSON, the cached rows copied as
        they are: the cost of ``status --json`` over 10,000 finished experiments."""
        rows = ",".join(row if isinstance(row, str) else compact(row) for row in self.rows)
        return f'{{"experiments": [{rows}], {compact({**self._rest(), **extra})[1:]}'

    @property
    def active(self) -> bool:
        """Anything still queued or running."""
        return any(self.totals.get(state) for state in UNFINISHED)


def collect(ws: Workspace, now: float | None = None) -> Overview:
    """Every experiment with its ``eta_seconds``, the totals per state and the overall ETA.

    One pass: each view is summarised and learned from; only the unfinished ones are kept
    for the forecast. A completed experiment whose record did not change costs a stat: its
    row and its steps' durations come from the cache."""
    now = time.time() if now is None else now
    live = claims.live_claims(ws, [p.stem for p in ws.config_files(ExperimentState.RUNNING)])
    history = eta.History()
    cache = ViewCache(ws)
    rows: list[dict[str, Any] | str] = []
    unfinished, used, totals = [], set(), Counter()
    finished: list[str] = []  # completed experiments' step durations, as cached JSON text
    # Parsed JSON has no reference cycles, but the cyclic collector would still walk the
    # growing heap again and again (a third of the time at 10,000 experiments).
    gc.disable()
    try:
        for state, name, path, output_dir in listed(ws):
            totals[state.value] += 1
            if output_dir is not None:
                used.add(output_dir)
                if state is ExperimentState.COMPLETED:
                    found = cache.completed_row(ws, name, path, output_dir)
                    if found is not None:
                        rows.append(found[0])
                        finished.append(found[1])
                        continue
            view = cache.view(output_dir)
            info = summarize(ws, name, state, path, view, now=now)
            rows.append(info)
            if view is not None:
                history.learn(view, live=name in live)
            if state in (ExperimentState.QUEUED, ExperimentState.RUNNING):
                unfinished.append((name, view))
    finally:
        gc.enable()
    cache.save(keep=used)
    if unfinished:  # else nothing to estimate: leave the text unparsed
        for samples in finished:
            history.add(json.loads(samples))
    forecast = eta.forecast(history, unfinished, live, now)
    for info in rows:
        if isinstance(info, str):  # completed, cached with eta_seconds 0
            continue
        info["eta_seconds"] = (0.0 if info["state"] == ExperimentState.COMPLETED
                               else _round(forecast.per_experiment.get(info["name"])))
        if info["state"] == ExperimentState.RUNNING:
            info["worker_alive"] = info["name"] in live
    return Overview(rows, dict(totals), _round(forecast.total), len(live),
                    len(ws.config_paths(ExperimentState.NEW)), forecast.rough)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
