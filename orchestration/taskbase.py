"""The base class users subclass in Tasks.py.

Subclasses written for the original package define their own ``__init__(self, config)``
and never call ``super().__init__``; so everything the framework provides is attached by
``prepare`` after construction instead of relying on ``TaskBase.__init__``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable


class TaskBase:
    """One step of an experiment: ``validate()`` before anything runs, ``run()`` does the work."""

    config: dict[str, Any]
    task: dict[str, Any]
    output_dir: Path
    log: logging.Logger

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def validate(self) -> list[str] | None:
        """Problems that should stop the experiment before it starts (none by default)."""
        return []

    def run(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define run()")

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far ``run()`` is (0..1); shown by ``status`` and the Luigi visualiser."""
        reporter = getattr(self, "_progress_reporter", None)
        if reporter is not None:
            reporter(max(0.0, min(1.0, float(fraction))), message)


def prepare(instance: TaskBase, config: dict[str, Any], task: dict[str, Any], output_dir: Path,
            reporter: Callable[[float, str | None], None] | None = None) -> TaskBase:
    """Give a constructed task what the contract promises, whatever its ``__init__`` did."""
    if not isinstance(getattr(instance, "config", None), dict):
        instance.config = config
    instance.task = task
    instance.output_dir = output_dir
    instance.log = logging.getLogger(f"orchestration.task.{task.get('id', '?')}")
    instance._progress_reporter = reporter  # type: ignore[attr-defined]
    return instance
