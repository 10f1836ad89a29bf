"""A slot runner: one long-lived process per worker slot that runs experiments one after
another through one Luigi worker and scheduler.

Keeping the Luigi worker and its local scheduler across experiments, instead of a
``luigi.build`` per experiment, costs about a third as much per experiment (measured
here: 3.2 against 9.0 ms for three trivial steps); they are renewed every
``RENEW_EVERY`` experiments so their bookkeeping cannot grow. Under a local scheduler the
sink steps are scheduled directly (no ``Experiment`` wrapper task: one task fewer per
experiment); with luigid the ``Experiment`` task is kept, as the visualiser's view of the
whole experiment. The runner forks its zygote before it imports Luigi, so the code hosts
(and the steps they fork) start from a lean process. It never imports user code.

The worker talks to it over two pipes, one JSON object per line: ``{"run": name, "claim":
n}`` in; ``{"hello": ...}`` once, then ``{"ended": name, "end": RunEnd, "why": ...}`` out.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Any

from . import lifecycle
from .codehost import Zygote
from .containment import die_with_parent
from .exceptions import OrchestrationError, SchedulerUnreachable, StepFailed
from .gpus import GpuPool
from .plan import Plan
from .states import ExperimentState
from .steps import HostPool
from .workspace import Workspace

class RunEnd(str, enum.Enum):
    """How a runner's experiment ended, as it tells the worker."""

    RECORDED = "recorded"  # the lifecycle recorded it: its folder says completed, failed, queued
    GONE = "gone"  # its config is in no folder (removed by hand mid-run)
    UNREACHABLE = "unreachable"  # luigid stopped answering
    UNRECORDED = "unrecorded"  # it failed but the failure could not be written (disk full)
    CRASHED = "crashed"  # the runner process itself died (the worker saw it)


RENEW_EVERY = 200
CHUNK = 50  # steps of one experiment given to Luigi at a time (see _luigi_run)
RESOURCE_WAIT_SECONDS = 1.0
HOST_IDLE_SECONDS = 30.0  # a kept code host idle this long is let go (its imports' memory)


@dataclass(frozen=True)
class RunnerSettings:
    """What a worker gives each of its runners."""

    workspace: str
    scheduler_url: str | None
    gpus: tuple[str, ...]
    slots_per_gpu: int
    owner: int  # the worker's pid: steps die with it


def runner_main(settings: RunnerSettings, commands: int, events: int, parent: int) -> None:
    """Body of a runner process; never returns."""
    code = 0
    try:
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        zygote = Zygote.start()  # before Luigi is imported: see the module doc
        _Runner(settings, zygote, events).serve(os.fdopen(commands, "rb"))
    except BaseException:  # noqa: BLE001 - a bug of ours: said in the worker's output
        logging.getLogger("orchestration").exception("runner crashed")
        code = 1
    finally:
        os._exit(code)


class _Runner:
    def __init__(self, settings: RunnerSettings, zygote: Zygote, events: int) -> None:
        import luigi.interface  # noqa: F401 - configures Luigi's logging and settings

        from .pipeline import luigi_tasks

        self.settings, self.events = settings, events
        self.ws = Workspace(settings.workspace)
        self.pool = HostPool(zygote, owner=settings.owner, keep=True,
                             gpus=GpuPool(list(settings.gpus), settings.slots_per_gpu))
        luigi_tasks.use_pool(self.pool, remote=bool(settings.scheduler_url))
        logging.getLogger("luigi-interface").setLevel(logging.WARNING)
        logging.getLogger("luigi-interface").addFilter(_hide_step_failures)
        self.luigi: Any = None
        self.runs = 0
        self.notify = False  # the last experiment's config asks for a notifier

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self.events, json.dumps(message).encode() + b"\n")

    def serve(self, commands: Any) -> None:
        self._send({"hello": os.getpid()})
        while True:
            # the worker asks one run at a time and waits for its end: the buffer is empty
            if self.pool.hosts and not select.select([commands], [], [], HOST_IDLE_SECONDS)[0]:
                self.pool.close()  # no experiment for a while: its imports' memory back
                continue
            line = commands.readline()
            if not line:
                break
            ask = json.loads(line)
            end, why = self.run(ask["run"], str(ask["claim"]))
            self._send({"ended": ask["run"], "end": end.value, "why": why,
                        "notify": self.notify})
        self.pool.close()  # the worker is done with us: the kept host empties its box

    # --- one experiment ---------------------------------------------------------------------
    def run(self, name: str, claim: str) -> tuple[RunEnd, str | None]:
        """Run one claimed experiment to its end; returns how it ended and, unless the
        lifecycle recorded it, why (the worker decides what to do then)."""
        from .pipeline.luigi_tasks import plan_of, unrecorded_failure

        try:  # the snapshot, read once for this run and every Luigi task of it
            plan = plan_of(str(self.ws.root), name, claim)
        except OrchestrationError as exc:
            return self._fail(name, f"cannot run {name}: {exc}")
        self.notify = bool(plan.spec.data.get("notify"))
        for task in plan.spec.tasks:
            if (problem := self.pool.gpus.check(task.gpus, f"task {task.id!r}")) is not None:
                return self._fail(name, problem)
        try:
            self._luigi_run(plan, claim)
        except SchedulerUnreachable as exc:
            return RunEnd.UNREACHABLE, str(exc)
        finally:
            self.pool.release(plan)
            self._forget()
        found = self.ws.find(name)
        if found is None:
            return RunEnd.GONE, f"{name} is in no folder"
        state = found[0]
        if state is ExperimentState.RUNNING and (why := unrecorded_failure(name)) is not None:
            return RunEnd.UNRECORDED, why
        if state is ExperimentState.RUNNING:
            unfinished = [t.id for t in plan.spec.tasks if plan.finished(t.id) is None]
            if not unfinished:
                lifecycle.complete(self.ws, name)
                return RunEnd.RECORDED, None
            return self._fail(name, f"Luigi could not run step(s) {', '.join(unfinished)} of "
                                    f"{name}: their resources "
                                    f"{[plan.spec.task(t).resources for t in unfinished]} "
                                    "exceed what the scheduler allows (declare them under "
                                    "[resources] in luigi.cfg and use luigid)")
        return RunEnd.RECORDED, None

    def _luigi_run(self, plan: Plan, claim: str) -> None:
        from luigi.rpc import RPCError

        from .pipeline.luigi_tasks import Experiment, Step

        root = str(self.ws.root)
        try:
            if not self.settings.scheduler_url:
                # Luigi's scheduling is quadratic in the size of the graph it is given (every
                # get_work scans every pending task): a big experiment is given to it in
                # topological slices of CHUNK steps, whose requirements are done already
                todo = [t for t in plan.spec.in_order() if plan.finished(t.id) is None]
                for start in range(0, len(todo), CHUNK):
                    worker = self._worker()
                    for task in todo[start:start + CHUNK]:
                        worker.add(Step(root, plan.name, task.id, claim, ""))
                    worker.run()
                    if any(plan.finished(t.id) is None for t in todo[start:start + CHUNK]):
                        return  # a step failed or was interrupted: the lifecycle has it
                return
            while True:
                worker = self._worker()
                worker.add(Experiment(root, plan.name, claim))
                worker.run()
                if not self._held_back(plan):
                    return
                # luigid held a step back (its resources are in use by another worker's step):
                # ask again until it is our turn
                time.sleep(RESOURCE_WAIT_SECONDS)
        except RPCError as exc:  # luigid went away mid-run
            raise SchedulerUnreachable(f"the Luigi scheduler stopped answering: {exc}") from None

    def _held_back(self, plan: Plan) -> bool:
        found = self.ws.find(plan.name)
        return (found is not None and found[0] is ExperimentState.RUNNING
                and any(plan.finished(t.id) is None for t in plan.spec.tasks))

    def _worker(self) -> Any:
        """The Luigi worker (and scheduler) of this runner, renewed now and then."""
        import luigi.rpc
        import luigi.scheduler
        import luigi.worker

        if self.luigi is None or self.runs >= RENEW_EVERY:
            if self.luigi is not None:
                self.luigi.__exit__(None, None, None)
            url = self.settings.scheduler_url
            scheduler = (luigi.rpc.RemoteScheduler(url) if url
                         else luigi.scheduler.Scheduler(retry_count=1, prune_on_get_work=False))
            self.luigi = luigi.worker.Worker(scheduler=scheduler, worker_processes=1,
                                             check_complete_on_run=True)
            self.luigi.__enter__()
            self.runs = 0
        return self.luigi

    def _forget(self) -> None:
        """Luigi caches every task instance it ever saw: let this experiment's go."""
        import luigi.task_register

        luigi.task_register.Register.clear_instance_cache()
        self.runs += 1

    def _fail(self, name: str, why: str) -> tuple[RunEnd, str | None]:
        try:
            lifecycle.fail(self.ws, name, why)
        except OSError as exc:
            return RunEnd.UNRECORDED, str(exc)
        return RunEnd.RECORDED, None


def _hide_step_failures(record: logging.LogRecord) -> bool:
    """A failed step is already reported (and its traceback is in its log): spare the
    terminal Luigi's second copy of it."""
    return not (record.exc_info and isinstance(record.exc_info[1], StepFailed))
