"""What a worker calls: after an experiment ended, and to reconcile (at start and
periodically). Together they replace a driver process.

Both are cheap when there is nothing to do: ``experiment_ended`` costs one ``stat`` for an
experiment that is not a trial, ``reconcile`` one listing of the state folders and two small
JSON files per search. When there is work, it runs in a forked child (``run_attempt``): the
child imports Optuna and, through ``ready``, the user's Tasks.py, neither of which belongs in
the worker; a crash or hang there costs the child, and the next reconcile does its work.
Optuna and ``ready`` are imported into a worker the first time a search needs them, so that
later children start warm (0.4 s); a worker that never meets a trial never imports them.
"""
from __future__ import annotations

import time

from ..states import ExperimentState
from ..workspace import Workspace
from .store import (ACTIVE, SearchFolder, experiment_states, outcome, search_names,
                    search_of, state_of)

ADVANCE_TIMEOUT_SECONDS = 900.0  # telling and asking take about a second; ready may import


def experiment_ended(ws: Workspace, name: str) -> list[str]:
    """Call after experiment ``name`` reached ConfigsCompleted or ConfigsFailed: if it is a
    trial, tell its search and ask for the next trial. Returns what was done."""
    try:
        search = search_of(ws, name)
        return [] if search is None else _advance_isolated(SearchFolder(ws, search))
    except OSError as exc:  # the worker goes on; the next reconcile tries again
        return [f"{name}: cannot tell its search ({exc})"]


def reconcile(ws: Workspace) -> list[str]:
    """Tell every ended trial not told yet and top every search up to ``parallel``: what a
    worker killed between a trial's final move and its tell left undone."""
    try:
        names = search_names(ws)
        states = experiment_states(ws) if names else {}
    except OSError as exc:
        return [f"cannot look at the searches in {ws.misc} ({exc})"]
    done = []
    for name in names:
        folder = SearchFolder(ws, name)
        try:
            due = needs_work(folder, states)
            done += _advance_isolated(folder) if due else []
        except (OSError, ValueError, KeyError) as exc:
            done.append(f"search {name}: cannot read {folder.path} ({exc})")
    return done


def needs_work(folder: SearchFolder, states: dict[str, ExperimentState]) -> bool:
    """Whether ``advance`` would do anything, judged without Optuna and without the lock."""
    ledger = folder.ledger()
    if ledger.asking:
        return True
    active = 0
    for name, entry in ledger.trials.items():
        state = state_of(folder.ws, name, states)
        told = outcome(state)
        if (told is not None and told != entry.told) or (
                entry.ready and state is ExperimentState.NEW):
            return True
        active += state in ACTIVE
    meta = folder.meta()
    if ledger.results_stale(meta.get("results_file")):
        return True  # a worker died between a tell and writing the results file
    return (folder.stopped() is None and len(ledger.trials) < meta["budget"]
            and active < meta["parallel"])


def _advance_isolated(folder: SearchFolder) -> list[str]:
    from .. import ready  # noqa: F401 - imported here, once, every later child starts warm
    from ..sandbox import AttemptRequest, run_attempt
    from .advance import advance  # (and Optuna with it)

    def target(_progress: object) -> list[str]:
        done = advance(folder)
        for line in done:
            print(time.strftime("%Y-%m-%d %H:%M:%S"), line)  # the child's output: advance.log
        return done

    result = run_attempt(target, AttemptRequest(log=str(folder.log),
                                                timeout=ADVANCE_TIMEOUT_SECONDS),
                         lambda fraction, message: None)
    if result.ok:
        return [f"search {folder.name}: {line}" for line in result.result]
    return [f"search {folder.name}: could not tell or ask ({result.failure.detail}); see "
            f"{folder.log}; the next reconcile tries again"]
