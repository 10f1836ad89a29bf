"""A search's folder, ``Misc/searches/<name>/``, and the small files in it.

- ``search.json``: what ``search start`` was given (the ``search:`` block, the concrete seed,
  whether the first trials were readied); never changed after start.
- ``base.yaml``: the spec without its ``search:`` block, ``pathToTasks`` absolute and
  ``outputDir`` resolved: what every trial config is made from.
- ``journal.log``: the Optuna study (journal file storage: appends under a file lock, safe on
  NFS where SQLite is not). The source of truth for what each trial was told.
- ``ledger.json``: trial experiment -> Optuna trial number and what it was told. A cache of
  the journal that lets a worker see, without importing Optuna, whether anything is to do.
- ``lock``: every change to the study or ledger happens under this ``flock``.
- ``stopped.txt``: present when no new trials are to be asked, saying why.
- ``search.results_file`` (optional, anywhere in ``Output/``): the completed trials as YAML.
- ``advance.log``: what the workers' telling and asking printed.

Trial experiments are named ``<search>-t0001``...; the name leads back to the search with one
``stat``, which keeps the worker's hook free for every experiment that is not a trial.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ContextManager

from ..exceptions import UsageError, WorkspaceError
from ..fsutil import atomic_write_json, atomic_write, locked, read_json
from ..states import ExperimentState
from ..workspace import CONFIG_SUFFIXES, Workspace

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
TRIAL_NAME = re.compile(r"(?P<search>.+)-t(?P<index>\d{4,})")
ACTIVE = (ExperimentState.NEW, ExperimentState.QUEUED, ExperimentState.RUNNING)


class Told:
    """What a trial's experiment was told as (ledger values)."""

    COMPLETED = "completed"
    FAILED = "failed"
    REMOVED = "removed"  # its config is gone from the workspace


def outcome(state: ExperimentState | None) -> str | None:
    """What an experiment in ``state`` is to be told as; None while it is still to run."""
    if state is None:
        return Told.REMOVED
    return {ExperimentState.COMPLETED: Told.COMPLETED,
            ExperimentState.FAILED: Told.FAILED}.get(state)


@dataclass
class Entry:
    """One trial experiment in the ledger."""

    number: int                # its Optuna trial number
    told: str | None = None    # a ``Told`` value once the study knows how it ended
    ready: bool = True         # queued by the search itself (False: left for the user's ready)


@dataclass
class Ledger:
    trials: dict[str, Entry] = field(default_factory=dict)
    next_index: int = 1
    asking: dict[str, Any] | None = None  # {"name", "ready"} while a trial is being asked
    rejected_in_a_row: int = 0            # trials `ready` rejected since the last one it took
    results_digest: str | None = None     # completed_digest() when results_file was written

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Ledger":
        return cls({name: Entry(**entry) for name, entry in data.get("trials", {}).items()},
                   data.get("next_index", 1), data.get("asking"),
                   data.get("rejected_in_a_row", 0), data.get("results_digest"))

    def completed_digest(self) -> str:
        """Which trials the study was told completed (what ``results_file`` lists)."""
        names = sorted(n for n, e in self.trials.items() if e.told == Told.COMPLETED)
        return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]

    def results_stale(self, results_file: str | None) -> bool:
        """Whether the search's results file (if it has one) lags the completed trials."""
        return bool(results_file) and self.results_digest != self.completed_digest()


class SearchFolder:
    """Paths and small-file I/O of one search; cheap to construct."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.ws, self.name = ws, name
        self.path = searches_root(ws) / name
        self.meta_path = self.path / "search.json"
        self.base_path = self.path / "base.yaml"
        self.journal = self.path / "journal.log"
        self.ledger_path = self.path / "ledger.json"
        self.stop_path = self.path / "stopped.txt"
        self.log = self.path / "advance.log"

    def exists(self) -> bool:
        return self.meta_path.is_file()

    def require(self) -> "SearchFolder":
        """Self, or a WorkspaceError naming the searches there are."""
        if not self.exists():
            known = ", ".join(search_names(self.ws)) or "none"
            raise WorkspaceError(f"no search named {self.name!r} in {self.ws.root} (searches: "
                                 f"{known}); start one with `job-orchestration search start "
                                 "SPEC.yaml`")
        return self

    def lock(self) -> ContextManager[None]:
        return locked(self.path / "lock")

    def meta(self) -> dict[str, Any]:
        return read_json(self.meta_path)

    def ledger(self) -> Ledger:
        try:
            return Ledger.from_json(read_json(self.ledger_path))
        except FileNotFoundError:
            return Ledger()

    def save(self, ledger: Ledger) -> None:
        atomic_write_json(self.ledger_path, asdict(ledger))

    def stopped(self) -> str | None:
        try:
            return self.stop_path.read_text().strip() or "stopped"
        except FileNotFoundError:
            return None

    def stop(self, reason: str) -> None:
        atomic_write(self.stop_path, f"{reason} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")

    def trial_name(self, index: int) -> str:
        return f"{self.name}-t{index:04d}"


def searches_root(ws: Workspace) -> Path:
    return ws.misc / "searches"


def search_names(ws: Workspace) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(searches_root(ws))
                      if e.is_dir() and (Path(e.path) / "search.json").is_file())
    except FileNotFoundError:
        return []


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(f"search name {name!r} is not valid; use 1-80 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit (--name NAME)")
    return name


def search_of(ws: Workspace, experiment: str) -> str | None:
    """The search that experiment ``experiment`` is a trial of, or None (one ``stat``)."""
    match = TRIAL_NAME.fullmatch(experiment)
    if match is None or not (searches_root(ws) / match["search"] / "search.json").is_file():
        return None
    return match["search"]


def experiment_states(ws: Workspace) -> dict[str, ExperimentState]:
    """Every config's state by name, from one listing of each state folder.

    Folders are listed in the order configs move through them, so a config that moves on
    while they are listed is still seen once."""
    states = {}
    for state in (ExperimentState.NEW, ExperimentState.QUEUED, ExperimentState.RUNNING,
                  ExperimentState.COMPLETED, ExperimentState.FAILED):
        try:
            with os.scandir(ws.folder(state)) as entries:
                for entry in entries:
                    stem, ext = os.path.splitext(entry.name)
                    if ext in CONFIG_SUFFIXES and not entry.name.startswith((".", "~", "#")):
                        states[stem] = state
        except FileNotFoundError:
            continue
    return states


def state_of(ws: Workspace, name: str, states: dict[str, ExperimentState]
             ) -> ExperimentState | None:
    """``states[name]``, looked up again when the listing missed it (a retry moves a config
    backwards, against the listing order)."""
    if name in states:
        return states[name]
    found = ws.find(name)
    return found[0] if found else None
