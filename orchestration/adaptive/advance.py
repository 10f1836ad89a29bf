"""One step of a search, under its lock: tell the study how ended trials went, then ask for
new trials until ``parallel`` are queued or running (or the budget is spent), and queue them.

Every part can be repeated after a crash at any point and does the right thing once:

- a tell is looked up in the journal before it is made (``study.tell``), and the ledger
  notes it only afterwards, so a crash in between costs a look, never a second tell;
- an ask is noted in the ledger (``asking``) before Optuna hears of it, and finished from
  the journal if the asker died (``_finish_ask``); the config is written only if it is
  nowhere in the workspace yet;
- a trial config left in ConfigSources by a crash before ``ready`` is readied next time.

So a worker killed anywhere costs nothing but the time until the next one reconciles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from ..exceptions import UsageError, WorkspaceError
from ..states import ExperimentState
from . import results_file, trials
from . import study as studies
from .spec import SearchSpec, parse_search
from .store import (ACTIVE, Entry, SearchFolder, Told, experiment_states, outcome,
                    state_of)

REJECTIONS_STOP = 3  # this many trials in a row rejected by `ready` stop the search
Check = Callable[[str, dict, dict], None]  # (name, config, params): raises ConfigError


def spec_of(meta: dict) -> SearchSpec:
    spec, problems = parse_search(meta["search"], meta["task_ids"])
    if spec is None:
        raise WorkspaceError(f"search {meta.get('name')}: its search.json is damaged: "
                             + "; ".join(problems))
    return spec


class Advancer:
    """Tells and asks for one search; the caller holds the search's lock."""

    def __init__(self, folder: SearchFolder, study: "studies.optuna.Study | None" = None) -> None:
        self.folder, self.ws = folder, folder.ws
        meta = folder.meta()
        self.spec, self.seed = spec_of(meta), meta["seed"]
        self.results_file: str | None = meta.get("results_file")
        self.base = yaml.safe_load(folder.base_path.read_text())
        self.ledger = folder.ledger()
        self.study = study or studies.load(str(folder.journal), folder.name, repair=True)
        self.states = experiment_states(self.ws)
        self.messages: list[str] = []
        self.outcomes: list = []  # what `ready` did with the trials queued here

    def run(self, ready_new: bool = True) -> list[str]:
        """Tell, top up, queue; again while `ready` rejected some (they count as failed).
        Then bring the results file up to date."""
        self._finish_ask()
        while True:
            self._tell_ended()
            while self._may_ask():
                self.ask(ready_new)
            if not self._ready_pending():
                break
        self._write_results()
        return self.messages

    def _write_results(self) -> None:
        path = self.results_file
        if path is None or not self.ledger.results_stale(path):
            return
        found = results_file.rows(self.ws, self.spec, self.study, self.ledger)
        results_file.write(Path(path), found)
        self.ledger.results_digest = self.ledger.completed_digest()
        self.folder.save(self.ledger)
        if found:
            self.messages.append(f"{path}: {len(found)} completed trial(s)")

    # --- asking ---------------------------------------------------------------------------
    def ask(self, ready: bool, check: Check | None = None) -> str:
        """Ask for one trial and write its config; returns the experiment name."""
        index = self.ledger.next_index
        while self._taken(self.folder.trial_name(index)):
            index += 1
        name = self.folder.trial_name(index)
        self.ledger.next_index = index + 1
        self.ledger.asking = {"name": name, "ready": ready}
        self.folder.save(self.ledger)
        self._materialise(name, ready, check)
        return name

    def _taken(self, name: str) -> bool:
        return (name in self.ledger.trials or name in self.states
                or self.ws.link(name).is_symlink())

    def _finish_ask(self) -> None:
        asking = self.ledger.asking
        if asking and asking["name"] not in self.ledger.trials:
            self._materialise(asking["name"], asking["ready"], None)
        elif asking:
            self.ledger.asking = None
            self.folder.save(self.ledger)

    def _materialise(self, name: str, ready: bool, check: Check | None) -> None:
        trial = studies.ask(self.study, self.spec, self.seed, name)
        params = {p.name: trial.params[p.name] for p in self.spec.params}
        suffix = name[len(self.folder.name) + 1:]
        config = trials.trial_config(self.base, name, suffix, params)
        if check is not None:
            check(name, config, params)
        header = [f"written by `job-orchestration search`: trial {suffix} of search "
                  f"{self.folder.name} ({self.folder.path})", trials.describe(params)]
        trials.write(self.ws, name, trials.render(config, header))
        self.ledger.trials[name] = Entry(trial.number, None, ready)
        self.ledger.asking = None
        self.folder.save(self.ledger)
        self.states.setdefault(name, ExperimentState.NEW)
        self.messages.append(f"{name}: new trial ({trials.describe(params)})")

    def _may_ask(self) -> bool:
        if self.folder.stopped() is not None or len(self.ledger.trials) >= self.spec.budget:
            return False
        active = sum(state_of(self.ws, name, self.states) in ACTIVE for name in self.ledger.trials)
        if active >= self.spec.parallel:
            return False
        if studies.grid_left(self.study, self.spec) == 0:
            self.folder.stop("every grid point has a trial")
            return False
        return True

    # --- queueing -------------------------------------------------------------------------
    def _ready_pending(self) -> int:
        """Ready the trials meant to be queued at once; returns how many were rejected."""
        from ..ready import ready_files

        pending = [self.ws.folder(ExperimentState.NEW) / f"{name}.yaml"
                   for name, entry in self.ledger.trials.items()
                   if entry.ready and self.states.get(name) is ExperimentState.NEW]
        if not pending:
            return 0
        outcomes = ready_files(self.ws, pending, base=Path.cwd(), whole=True)
        rejected = 0
        for result in outcomes:
            if result.queued:
                self.states[result.name] = ExperimentState.QUEUED
                self.ledger.rejected_in_a_row = 0
                self.messages.append(f"{result.name}: queued")
            elif not result.skipped:
                rejected += 1
                self.ledger.rejected_in_a_row += 1
                self.states[result.name] = ExperimentState.FAILED
                self.messages.append(f"{result.name}: rejected by ready: {result.message}")
            else:  # another `ready` took it: look where it went next time
                self.states.pop(result.name, None)
        if self.ledger.rejected_in_a_row >= REJECTIONS_STOP:
            self.folder.stop(f"the last {self.ledger.rejected_in_a_row} trials were rejected by "
                             "ready (see their .error.txt in ConfigsFailed/); fix the cause and "
                             "start a new search")
            self.messages.append(f"stopped: {self.folder.stopped()}")
        self.folder.save(self.ledger)
        self.outcomes += outcomes
        return rejected

    # --- telling --------------------------------------------------------------------------
    def _tell_ended(self) -> None:
        self.states = experiment_states(self.ws)
        for name, entry in self.ledger.trials.items():
            told = outcome(state_of(self.ws, name, self.states))
            if told is None or told == entry.told:
                continue
            if told == Told.COMPLETED:
                value, why = trials.objective_value(self.ws, name, self.spec)
            elif told == Told.FAILED:
                value, why = None, trials.failure_reason(self.ws, name)
            else:
                value, why = None, "its config is no longer in the workspace"
            did = studies.tell(self.study, name, entry.number, value, why)
            entry.told = told
            self.folder.save(self.ledger)
            if did:
                self.messages.append(f"{name}: {did}")


def advance(folder: SearchFolder) -> list[str]:
    """Take the search's lock and advance it; what it did, one line each."""
    try:
        with folder.lock():
            return Advancer(folder).run() if folder.exists() else []
    except FileNotFoundError:
        if folder.exists():
            raise
        return []  # its start failed and removed the folder meanwhile


def stop(folder: SearchFolder) -> None:
    """No new trials from now on; those queued or running finish and are told."""
    with folder.require().lock():
        if (reason := folder.stopped()) is not None:
            raise UsageError(f"search {folder.name} is already stopped: {reason}")
        if len(folder.ledger().trials) >= folder.meta()["budget"]:
            raise UsageError(f"search {folder.name} has asked for all its trials already; "
                             "nothing to stop (the trials still queued or running finish)")
        folder.stop("stopped by `job-orchestration search stop`")
