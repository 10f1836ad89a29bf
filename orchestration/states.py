"""The one vocabulary of states a user sees: experiments and their steps.

An experiment's state *is* the workspace folder its config is in (the value is what
``status``, ``show`` and ``run.json`` print; ``folder`` is where the config lies). A step's
state lives in the run record and its side files. Both enums are ``str`` subclasses, so they
compare equal to their values and serialise to JSON as those values.
"""
from __future__ import annotations

import enum


class ExperimentState(str, enum.Enum):
    """Where an experiment is in its life; each value has its own workspace folder."""

    NEW = "new"              # dropped into ConfigSources, not validated yet
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def folder(self) -> str:
        return _FOLDERS[self]

    @classmethod
    def of_folder(cls, folder: str) -> "ExperimentState":
        return _BY_FOLDER[folder]

    def __str__(self) -> str:
        return self.value


_FOLDERS = {ExperimentState.NEW: "ConfigSources", ExperimentState.QUEUED: "ConfigsToRun",
            ExperimentState.RUNNING: "ConfigsInProgress",
            ExperimentState.COMPLETED: "ConfigsCompleted",
            ExperimentState.FAILED: "ConfigsFailed"}
_BY_FOLDER = {folder: state for state, folder in _FOLDERS.items()}
UNFINISHED = (ExperimentState.QUEUED, ExperimentState.RUNNING)  # what a worker still has to do


class StepState(str, enum.Enum):
    """One step of an experiment."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @classmethod
    def read(cls, value: object) -> "StepState":
        """A state as stored by any version: records before the lifecycle rework said
        ``done`` for a finished step."""
        return cls.COMPLETED if value == "done" else cls(value)

    def __str__(self) -> str:
        return self.value
