"""The Luigi side: three generic task classes whose parameters are plain strings.

Luigi's task registry and instance cache are global, so no class is ever created per config:
``Step(workspace, name, step)`` is one step of any experiment, ``Experiment`` wraps one
readied config and ``Queue`` every queued one. Each reads the snapshot taken at ``ready``.
``claim`` numbers the runs of an experiment, so a step that a killed worker left RUNNING in
luigid is a different Luigi task from the same step run again. ``workspace`` and ``claim``
are hidden in the visualiser: a Step reads ``name=..., step=train``.

A Step is complete when its marker is one of ours for this snapshot and these inputs
(``Plan.finished``), not merely when a file exists.
"""
from __future__ import annotations

import functools
import os

import luigi
import luigi.interface
import luigi.task
from luigi.parameter import ParameterVisibility

from .. import lifecycle
from ..exceptions import OrchestrationError, StepFailed
from ..plan import Plan
from ..states import ExperimentState
from ..steps import HostPool, run_step
from ..workspace import ENV_VAR, Workspace
from .progress import LuigiProgress

HIDDEN = ParameterVisibility.HIDDEN


class _Process:
    """How this process runs steps. Luigi constructs the tasks itself, so this is the one
    handle they have: the slot runner sets it (its zygote-backed hosts, its scheduler);
    a ``luigi --module`` run gets forked hosts and whatever scheduler Luigi was told."""

    pool: HostPool | None = None
    remote: bool | None = None
    unrecorded: dict[str, str] = {}  # experiment -> a failure that could not be written down


def use_pool(pool: HostPool, remote: bool) -> None:
    """Run this process's steps in ``pool``'s hosts; ``remote``: scheduled by luigid."""
    _Process.pool, _Process.remote = pool, remote


def unrecorded_failure(name: str) -> str | None:
    """The failure of ``name`` this process could not write down (a full disk), if any."""
    return _Process.unrecorded.pop(name, None)


def pool() -> HostPool:
    if _Process.pool is None:
        _Process.pool = HostPool()
    return _Process.pool


def _remote() -> bool:
    if _Process.remote is None:
        _Process.remote = not luigi.interface.core().local_scheduler
    return _Process.remote


def _workspace(value: str) -> Workspace:
    return Workspace.from_setting(value or os.environ.get(ENV_VAR))


@functools.lru_cache(maxsize=256)
def plan_of(workspace: str, name: str, claim: str) -> Plan:
    """The snapshot of one run of an experiment, read once for all its tasks (it cannot
    change during a run: ``claim`` numbers the runs)."""
    return Plan.load(_workspace(workspace), name)


class _HiddenIdentity:
    """Hidden parameters (kept out of the visualiser's view) still tell tasks apart.

    Luigi leaves hidden parameters out of a task's id; ``workspace`` and ``claim`` must stay
    in it, or a step a killed worker left RUNNING in luigid (claim 1) would be the same task
    as its rerun (claim 2), and two workspaces sharing one luigid would share tasks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        task: luigi.Task = self  # type: ignore[assignment]
        params = task.to_str_params(only_significant=True, only_public=False)
        task.task_id = luigi.task.task_id_str(task.get_task_family(), params)
        self._Task__hash = hash(task.task_id)  # what Luigi's own __init__ sets

    @classmethod
    @functools.cache
    def get_params(cls) -> list:  # type: ignore[override]
        """Luigi looks the parameters up with ``dir(cls)`` on every task it builds (32 times
        per experiment, 4 ms); ours never change."""
        return super().get_params()  # type: ignore[misc]


class MarkerTarget(luigi.Target):
    """A step's marker: it counts only if it is ours, for this snapshot and these inputs."""

    def __init__(self, plan: Plan, task_id: str) -> None:
        self.plan, self.task_id = plan, task_id
        self.path = str(plan.marker(task_id))

    def exists(self) -> bool:
        return self.plan.finished(self.task_id) is not None


class Step(_HiddenIdentity, luigi.Task):
    """One task of one experiment."""

    workspace = luigi.Parameter(default="", visibility=HIDDEN)
    name = luigi.Parameter()
    step = luigi.Parameter()
    claim = luigi.Parameter(default="", visibility=HIDDEN)
    # the task id of the Experiment that wants this step, where its progress is shown
    experiment = luigi.Parameter(default="", significant=False, visibility=HIDDEN)

    @property
    def plan(self) -> Plan:
        return plan_of(self.workspace, self.name, self.claim)

    @property
    def spec(self):  # noqa: ANN201 - a TaskSpec
        return self.plan.spec.task(self.step)

    @property
    def resources(self) -> dict[str, int]:  # type: ignore[override]
        # Empty unless declared: declared ones make Luigi's get_work scan every task. GPUs
        # are this worker's own slots (see gpus.py); only luigid also counts them across
        # workers, and a local scheduler that does not know "gpu" would never grant it.
        own = dict(self.spec.resources)
        if not _remote():
            own.pop("gpu", None)
        return own

    def requires(self) -> list["Step"]:
        return [Step(self.workspace, self.name, dep, self.claim, self.experiment)
                for dep in self.spec.requires]

    def output(self) -> MarkerTarget:
        return MarkerTarget(self.plan, self.step)

    def run(self) -> None:
        plan = self.plan
        ensure_claimed(plan)
        progress = LuigiProgress(self, plan, self.experiment)
        progress.update()
        try:
            outcome = run_step(plan, self.spec, pool(), progress)
        finally:
            progress.update()
        if outcome.ok:
            return
        failure = outcome.failure
        assert failure is not None
        pool().release(plan)
        if failure.cause.infrastructure:
            lifecycle.requeue(plan.ws, plan.name, failure.cause, failure.detail)
            progress.update(failure=failure)
            raise StepFailed(f"{plan.name}: step {self.step} was {failure.cause.value}: "
                             f"{failure.detail}; queued again")
        log = plan.output_dir / "logs" / f"{self.step}.log"
        reason = (f"step {self.step!r} ({self.spec.method}) failed after {failure.attempt} "
                  f"attempt(s): {failure.cause.value}: {failure.detail}\nlog: {log}\n")
        try:
            lifecycle.fail(plan.ws, plan.name, reason, failure, self.step)
        except OSError as exc:  # a full disk, say: the worker decides what to do with it
            _Process.unrecorded[plan.name] = str(exc)
        progress.update(failure=failure)  # the visualiser's rows say why
        raise StepFailed(reason.strip())


class Experiment(_HiddenIdentity, luigi.Task):
    """One readied experiment: complete when its config reached ConfigsCompleted."""

    workspace = luigi.Parameter(default="", visibility=HIDDEN)
    name = luigi.Parameter()
    claim = luigi.Parameter(default="", visibility=HIDDEN)

    @property
    def plan(self) -> Plan:
        return plan_of(self.workspace, self.name, self.claim)

    def requires(self) -> list[Step]:
        ws = str(self.plan.ws.root)
        return [Step(ws, self.name, t.id, self.claim, self.task_id)
                for t in self.plan.spec.sinks()]

    def complete(self) -> bool:
        found = _workspace(self.workspace).find(self.name)
        return found is not None and found[0] is ExperimentState.COMPLETED

    def run(self) -> None:
        plan = self.plan
        finish(plan)
        if self.set_status_message is not None:  # None outside a Luigi worker
            total = len(plan.spec.tasks)
            self.set_status_message(f"{total}/{total} steps, completed")
            self.set_progress_percentage(100)


class Queue(luigi.WrapperTask):
    """Every experiment in ConfigsToRun, as one Luigi graph (our ``worker`` scales better:
    it gives Luigi one small graph per experiment)."""

    workspace = luigi.Parameter(default="", visibility=HIDDEN)

    def requires(self) -> list[Experiment]:
        ws = _workspace(self.workspace)
        return [Experiment(str(ws.root), p.stem)
                for p in ws.config_files(ExperimentState.QUEUED)]


def finish(plan: Plan) -> None:
    """Every step is done: the experiment is completed (once; its host is let go)."""
    pool().release(plan)
    found = plan.ws.find(plan.name)
    if found is not None and found[0] is ExperimentState.RUNNING:
        lifecycle.complete(plan.ws, plan.name)


def ensure_claimed(plan: Plan) -> None:
    """A Luigi run started by ``luigi --module`` claims its experiment at its first step;
    one started by our worker holds the claim already. Refuses experiments that are not
    queued or running (finished, or failed: ``retry`` queues those again).

    Under ``luigi --workers N`` two root steps of one experiment start at once, so another
    process may be claiming the config right now: losing that race, or looking while the
    config is between two folders, means look again, not fail the step."""
    ws, name = plan.ws, plan.name
    for _ in range(3):
        found = ws.find(name)
        if found is None:
            continue
        state, path = found
        if state is ExperimentState.RUNNING:
            return
        if state is not ExperimentState.QUEUED:
            break
        if lifecycle.claim(ws, path, holder=_claim_holder()) is not None:
            return
    state, _ = ws.locate(name)
    raise OrchestrationError(f"experiment {name!r} is {state.value}, not queued or running"
                             + ("; `job-orchestration retry` queues it again"
                                if state is ExperimentState.FAILED else ""))


def _claim_holder() -> int:
    """The pid whose life a claim follows. Under ``luigi --workers N`` a step runs in a child
    Luigi forks for it and reaps when it ends: the claim belongs to that Luigi worker, else it
    would look dead (and be taken by another worker) as soon as the first step finished."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()

