"""The whole workspace at a glance, for ``status``: every experiment as ``show --json`` has
it, plus the time it has left, and when the lot will be done with the workers now running.

Each run record is read once and no YAML is parsed: the same records give the summaries,
the history the estimates learn from, and the estimates (10,000 experiments in about 1 s).
"""
from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import claims, eta
from ..states import ExperimentState
from ..workspace import Workspace
from . import run_record
from .summary import listed, summarize


@dataclass
class Overview:
    experiments: list[dict[str, Any]]
    totals: dict[str, int]
    eta_seconds: float | None
    workers: int  # experiments a live worker is running now: the parallelism the ETA assumes

    def as_json(self) -> dict[str, Any]:
        return {"experiments": self.experiments, "totals": self.totals,
                "eta_seconds": self.eta_seconds, "workers": self.workers}

    @property
    def active(self) -> bool:
        """Anything still queued or running."""
        return bool(self.totals.get("queued") or self.totals.get("running"))


def _read_record(output_dir: Path | None) -> dict | None:
    if output_dir is None:
        return None
    try:
        return run_record.load(output_dir)
    except (OSError, ValueError):
        return None


def collect(ws: Workspace, now: float | None = None) -> Overview:
    """Every experiment with its ``eta_seconds``, the totals per state and the overall ETA.

    One pass: each record is summarised and learned from, then dropped unless the
    experiment is unfinished (holding 10,000 parsed records costs more than reading them)."""
    now = time.time() if now is None else now
    live = claims.live_claims(ws, [p.stem for p in ws.config_files(ExperimentState.RUNNING)])
    history = eta.History()
    rows, unfinished = [], []
    # Parsed JSON has no reference cycles, but the cyclic collector would still walk the
    # growing heap again and again (a third of the time at 10,000 experiments).
    gc.disable()
    try:
        for state, path, output_dir in listed(ws):
            record = _read_record(output_dir)
            info = summarize(ws, path.stem, state, path, output_dir, with_config=False,
                             record=record)
            rows.append(info)
            if record is not None:
                history.learn(record, live=info["name"] in live)
            if state in (ExperimentState.QUEUED, ExperimentState.RUNNING):
                unfinished.append((info["name"], record))
    finally:
        gc.enable()
    forecast = eta.forecast(history, unfinished, live, now)
    for info in rows:
        info["eta_seconds"] = (0.0 if info["state"] == ExperimentState.COMPLETED.value
                               else _round(forecast.per_experiment.get(info["name"])))
        if info["state"] == ExperimentState.RUNNING.value:
            info["worker_alive"] = info["name"] in live
    return Overview(rows, dict(Counter(r["state"] for r in rows)), _round(forecast.total),
                    len(live))


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
