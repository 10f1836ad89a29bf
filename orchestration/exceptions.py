"""The errors a user can cause, each carrying the exit code the CLI returns for it.

Anything that is not an ``OrchestrationError`` is a bug in this package: the CLI shows a
traceback for those only.
"""
from __future__ import annotations


class OrchestrationError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole message."""

    exit_code = 2


class UsageError(OrchestrationError):
    """Wrong command-line use or missing setting (such as the workspace)."""


class WorkspaceError(OrchestrationError):
    """The workspace is missing, not writable, or an experiment name is unknown."""


class ConfigError(OrchestrationError):
    """A config is rejected. Carries every problem found, each naming key, value and fix."""

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.path}: config rejected:\n{lines}")


class ProvenanceError(OrchestrationError):
    """The recorded code state cannot be rebuilt (e.g. the commit is gone)."""


class ExperimentFailed(OrchestrationError):
    """At least one experiment failed (``worker``, ``demo``)."""

    exit_code = 1
