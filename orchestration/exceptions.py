"""The errors a user can cause, each carrying the exit code the CLI returns for it.

Anything that is not an ``OrchestrationError`` is a bug in this package: the CLI shows a
traceback for those only.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class OrchestrationError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""

    exit_code = 2


class UsageError(OrchestrationError):
    """Wrong command-line use or missing setting (such as the workspace)."""


class WorkspaceError(OrchestrationError):
    """The workspace is missing or not writable, or holds something it should not."""


class UnknownExperiment(WorkspaceError):
    """No experiment has this name; the message suggests close ones."""

    def __init__(self, name: str, known: Iterable[str], where: str) -> None:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else (
            " (see `job-orchestration status` for the names)")
        super().__init__(f"no experiment named {name!r} in {where}{hint}")


class WrongState(WorkspaceError):
    """The experiment is not in a state the command can act on (retry of a running one...)."""


class RecordError(WorkspaceError):
    """An experiment's run record is missing or damaged."""


class ConfigError(OrchestrationError):
    """A config is rejected. Carries every problem found, each naming key, value and fix."""

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.path}: config rejected:\n{lines}")


class TasksImportError(OrchestrationError):
    """Tasks.py is missing, or importing it raised, exited or hung; the message says where."""


class ProvenanceError(OrchestrationError):
    """The recorded code state cannot be rebuilt (e.g. the commit is gone)."""


class SchedulerUnreachable(OrchestrationError):
    """luigid does not answer at the URL the worker was given."""


class ExperimentFailed(OrchestrationError):
    """At least one experiment failed (``worker``, ``demo``)."""

    exit_code = 1


class StepFailed(Exception):
    """A step failed for good (after its retries); raised inside a Luigi task so that Luigi
    does not run what depends on it. Its experiment's failure is already recorded."""
