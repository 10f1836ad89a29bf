"""Read side of a search: its trials with values (``results --search``), the best one
(``search best``) and where it stands (``search status``).

Values come from the journal, so they are exactly what the study was told; states come from
the workspace folders, as ``status`` shows them. Nothing here takes the search's lock.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from ..exceptions import WorkspaceError
from ..records import eta
from ..states import ExperimentState
from ..workspace import Workspace
from . import study as studies
from .advance import spec_of
from .spec import SearchSpec
from .store import ACTIVE, SearchFolder, Told, experiment_states, outcome, state_of


class SearchState(str, enum.Enum):
    """Where a search stands (``search status``)."""

    RUNNING = "running"    # trials active, or waiting for a worker to ask for more
    STOPPING = "stopping"  # stopped: no new trials, running ones finish
    STOPPED = "stopped"
    DONE = "done"          # every trial asked and told

    def __str__(self) -> str:
        return self.value


@dataclass
class TrialRow:
    """One trial experiment as the study knows it."""

    trial: int                 # the experiment's number in the search: 3 for <search>-t0003
    name: str
    state: str                 # the experiment's state, or "removed"
    value: float | None        # the objective, once the study was told it
    params: dict[str, Any]
    optuna_trial: int          # the Optuna trial that holds the value (a retry adds one)
    fail_reason: str | None = None


def trial_rows(ws: Workspace, name: str) -> tuple[SearchSpec, list[TrialRow]]:
    """Every trial of search ``name``, best first (then the unfinished, in order)."""
    folder = SearchFolder(ws, name).require()
    spec = spec_of(folder.meta())
    study = studies.load(str(folder.journal), name)
    states = experiment_states(ws)
    rows = []
    for experiment, entry in folder.ledger().trials.items():
        trial = studies.result_of(study, experiment) or studies.trials(study)[entry.number]
        state = state_of(ws, experiment, states)
        complete = trial.state == studies.TrialState.COMPLETE
        rows.append(TrialRow(int(experiment[len(name) + 2:]), experiment,
                             state.value if state else Told.REMOVED,
                             trial.value if complete else None,
                             {p.name: trial.params.get(p.name) for p in spec.params},
                             trial.number, trial.user_attrs.get(studies.FAIL_REASON)))
    sign = -1 if spec.direction == "maximize" else 1
    rows.sort(key=lambda r: (r.value is None, sign * r.value if r.value is not None else 0,
                             r.trial))
    return spec, rows


def best(ws: Workspace, name: str) -> dict[str, Any]:
    """The best trial: its experiment, value, parameters and output folder."""
    spec, rows = trial_rows(ws, name)
    if not rows or rows[0].value is None:
        raise WorkspaceError(f"no trial of search {name!r} has completed yet (see "
                             f"`job-orchestration search status {name}`)")
    top = rows[0]
    try:
        output_dir: str | None = str(ws.output_dir(top.name))
    except WorkspaceError:
        output_dir = None
    return {"search": name, "objective": spec.objective, "direction": spec.direction,
            "experiment": top.name, "trial": top.trial, "optuna_trial": top.optuna_trial,
            "value": top.value, "params": top.params, "output_dir": output_dir}


def status(ws: Workspace, name: str) -> dict[str, Any]:
    """Where search ``name`` stands: counts by state, best so far, time left."""
    folder = SearchFolder(ws, name).require()
    spec, rows = trial_rows(ws, name)
    ledger, stopped = folder.ledger(), folder.stopped()
    counts = {state: sum(r.state == state for r in rows)
              for state in (*ACTIVE, ExperimentState.COMPLETED, ExperimentState.FAILED,
                            Told.REMOVED)}
    active = sum(counts[s] for s in ACTIVE)
    untold = any(outcome(None if r.state == Told.REMOVED else ExperimentState(r.state))
                 not in (None, ledger.trials[r.name].told) for r in rows)
    left = 0 if stopped else max(0, spec.budget - len(rows))
    if active or untold:
        state = SearchState.STOPPING if stopped else SearchState.RUNNING
    elif left == 0:
        state = SearchState.DONE if len(rows) >= spec.budget else SearchState.STOPPED
    else:
        state = SearchState.RUNNING  # waiting for a worker to ask for more
    best_row = rows[0] if rows and rows[0].value is not None else None
    return {"name": name, "state": state, "stopped": stopped, "objective": spec.objective,
            "direction": spec.direction, "sampler": spec.sampler, "parallel": spec.parallel,
            "trials": spec.budget, "asked": len(rows), "to_ask": left, "counts": counts,
            "best": asdict(best_row) if best_row else None,
            "eta_seconds": (_eta(ws, rows, left, spec.parallel) if state is not SearchState.DONE
                            else 0.0),
            "journal": str(folder.journal)}


def _eta(ws: Workspace, rows: list[TrialRow], left: int, parallel: int) -> float | None:
    """Seconds until the last trial ends: the queue's own estimates for the trials that
    exist, the mean length of a finished trial for those still to be asked."""
    from ..records.overview import collect

    known = {e["name"]: e for e in collect(ws).experiments}
    lengths = [sum(t.get("seconds") or 0.0 for t in known[r.name]["tasks"])
               for r in rows if r.state == ExperimentState.COMPLETED and r.name in known]
    queued = [known[r.name].get("eta_seconds") for r in rows
              if r.state == ExperimentState.QUEUED and r.name in known]
    per_trial = sum(lengths) / len(lengths) if lengths else next(
        (q for q in queued if q is not None), None)
    running = [known[r.name].get("eta_seconds") if r.name in known else None
               for r in rows if r.state == ExperimentState.RUNNING]
    later = queued + [per_trial] * (left + sum(r.state == ExperimentState.NEW for r in rows))
    if any(v is None for v in running + later):
        return None
    return round(eta.makespan(running, later, slots=max(parallel, len(running))), 1)
