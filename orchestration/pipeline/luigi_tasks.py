"""The Luigi side: three generic task classes whose parameters are plain strings.

Luigi's task registry and instance cache are global, so no class is ever created per config:
``Step(workspace, name, step)`` is one step of any experiment, ``Experiment`` wraps one
readied config and ``Queue`` every queued one. Each reads the snapshot taken at ``ready``.
"""
from __future__ import annotations

import os
from functools import cached_property

import luigi

from ..config.tasks_module import TasksLoader
from ..workspace import ENV_VAR, State, Workspace
from .execute import Plan, finalize, run_step

# One loader per process: Luigi constructs tasks itself, so there is no object to hand it
# to, and importing a Tasks.py once per process (not once per step) is the point.
_LOADER = TasksLoader()


def _workspace(value: str) -> Workspace:
    return Workspace.from_setting(value or os.environ.get(ENV_VAR))


class MarkerTarget(luigi.LocalTarget):
    """A step's marker file; it appears (atomically) only after the step's run() returned."""


class Step(luigi.Task):
    """One task of one experiment."""

    workspace = luigi.Parameter()
    name = luigi.Parameter()
    step = luigi.Parameter()

    @cached_property
    def plan(self) -> Plan:
        return Plan.load(_workspace(self.workspace), self.name)

    @property
    def spec(self):  # noqa: ANN201 - a TaskSpec
        return self.plan.spec.task(self.step)

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        return self.spec.resources  # empty unless declared: see LUIGI_NOTES on get_work cost

    def requires(self) -> list["Step"]:
        return [Step(self.workspace, self.name, dep) for dep in self.spec.requires]

    def output(self) -> MarkerTarget:
        return MarkerTarget(str(self.plan.marker(self.step)))

    def run(self) -> None:
        run_step(self.plan, self.spec, _LOADER, self._report)

    def _report(self, fraction: float, message: str | None) -> None:
        if self.set_progress_percentage is not None:  # None outside a Luigi worker
            self.set_progress_percentage(round(fraction * 100))
            self.set_status_message(message or f"{fraction:.0%}")


class Experiment(luigi.Task):
    """One readied experiment: complete when its config reached ConfigsCompleted."""

    workspace = luigi.Parameter(default="")
    name = luigi.Parameter()

    @cached_property
    def plan(self) -> Plan:
        return Plan.load(_workspace(self.workspace), self.name)

    def requires(self) -> list[Step]:
        ws = str(self.plan.ws.root)
        return [Step(ws, self.name, t.id) for t in self.plan.spec.sinks()]

    def complete(self) -> bool:
        found = _workspace(self.workspace).find(self.name)
        return found is not None and found[0] is State.COMPLETED

    def run(self) -> None:
        finalize(self.plan)


class Queue(luigi.WrapperTask):
    """Every experiment in ConfigsToRun, as one Luigi graph (our ``worker`` scales better:
    it gives Luigi one small graph per experiment)."""

    workspace = luigi.Parameter(default="")

    def requires(self) -> list[Experiment]:
        ws = _workspace(self.workspace)
        return [Experiment(str(ws.root), p.stem) for p in ws.config_files(State.QUEUED)]
