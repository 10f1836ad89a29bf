"""The Luigi side: three generic task classes whose parameters are plain strings.

Luigi's task registry and instance cache are global, so no class is ever created per config:
``Step(workspace, name, step)`` is one step of any experiment, ``Experiment`` wraps one
readied config and ``Queue`` every queued one. Each reads the snapshot taken at ``ready``.
``claim`` numbers the worker's claims of an experiment, so a step that a killed worker left
RUNNING in luigid is a different Luigi task from the same step run again.
"""
from __future__ import annotations

import os
from functools import lru_cache

import luigi
from luigi.parameter import ParameterVisibility

from ..config.tasks_module import TasksLoader
from ..states import ExperimentState
from ..workspace import ENV_VAR, Workspace
from .execute import Plan, finalize, run_step
from .progress import LuigiProgress

# One loader per process: Luigi constructs tasks itself, so there is no object to hand it
# to, and importing a Tasks.py once per process (not once per step) is the point.
_LOADER = TasksLoader()


def _workspace(value: str) -> Workspace:
    return Workspace.from_setting(value or os.environ.get(ENV_VAR))


@lru_cache(maxsize=256)
def _plan(workspace: str, name: str, claim: str) -> Plan:
    """The snapshot of one run of an experiment, read once for all its tasks (it cannot
    change during a run: ``claim`` numbers the runs)."""
    return Plan.load(_workspace(workspace), name)


class MarkerTarget(luigi.LocalTarget):
    """A step's marker file; it appears (atomically) only after the step's run() returned."""


class Step(luigi.Task):
    """One task of one experiment."""

    workspace = luigi.Parameter()
    name = luigi.Parameter()
    step = luigi.Parameter()
    claim = luigi.Parameter(default="")
    # the task id of the Experiment that wants this step, where its progress is shown
    experiment = luigi.Parameter(default="", significant=False,
                                 visibility=ParameterVisibility.HIDDEN)

    @property
    def plan(self) -> Plan:
        return _plan(self.workspace, self.name, self.claim)

    @property
    def spec(self):  # noqa: ANN201 - a TaskSpec
        return self.plan.spec.task(self.step)

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        return self.spec.resources  # empty unless declared: declared ones make Luigi's get_work scan every task

    def requires(self) -> list["Step"]:
        return [Step(self.workspace, self.name, dep, self.claim, self.experiment)
                for dep in self.spec.requires]

    def output(self) -> MarkerTarget:
        return MarkerTarget(str(self.plan.marker(self.step)))

    def run(self) -> None:
        progress = LuigiProgress(self, self.plan, self.experiment)
        progress.update()
        try:
            run_step(self.plan, self.spec, _LOADER, progress)
        finally:
            progress.update()


class Experiment(luigi.Task):
    """One readied experiment: complete when its config reached ConfigsCompleted."""

    workspace = luigi.Parameter(default="")
    name = luigi.Parameter()
    claim = luigi.Parameter(default="")

    @property
    def plan(self) -> Plan:
        return _plan(self.workspace, self.name, self.claim)

    def requires(self) -> list[Step]:
        ws = str(self.plan.ws.root)
        return [Step(ws, self.name, t.id, self.claim, self.task_id)
                for t in self.plan.spec.sinks()]

    def complete(self) -> bool:
        found = _workspace(self.workspace).find(self.name)
        return found is not None and found[0] is ExperimentState.COMPLETED

    def run(self) -> None:
        finalize(self.plan)
        if self.set_status_message is not None:  # None outside a Luigi worker
            total = len(self.plan.spec.tasks)
            self.set_status_message(f"{total}/{total} steps, completed")
            self.set_progress_percentage(100)


class Queue(luigi.WrapperTask):
    """Every experiment in ConfigsToRun, as one Luigi graph (our ``worker`` scales better:
    it gives Luigi one small graph per experiment)."""

    workspace = luigi.Parameter(default="")

    def requires(self) -> list[Experiment]:
        ws = _workspace(self.workspace)
        return [Experiment(str(ws.root), p.stem) for p in ws.config_files(ExperimentState.QUEUED)]
