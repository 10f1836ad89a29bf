"""A readied experiment as a run sees it: the snapshot taken at ``ready`` and what follows.

Everything a run needs is derived here once from the run record: the checked spec, the
config each task receives (with ``outputDir`` the absolute output folder, as in 0.0.7), the
folder the code runs in, and the identity each step's marker must carry (the snapshot's hash
and the step's own inputs: its config and, transitively, its upstream steps').
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config.schema import ExperimentSpec, TaskSpec, spec_from_snapshot
from .exceptions import RecordError
from .fsutil import read_json
from .records import run_record
from .records.run_record import Marker, RunRecord
from .workspace import Workspace


def task_config(spec: ExperimentSpec, task: TaskSpec, output_dir: Path) -> dict[str, Any]:
    """What ``Method(config)`` receives, at ``ready`` as when it runs: the top-level fields
    with the task's own entry over them, ``outputDir`` the absolute output folder (as 0.0.7
    gave it: tasks write to ``os.path.join(config["outputDir"], ...)``)."""
    return {**spec.task_config(task), "outputDir": str(output_dir)}


@dataclass(frozen=True)
class Plan:
    ws: Workspace
    name: str
    output_dir: Path
    spec: ExperimentSpec
    snapshot: str       # the config's hash: the identity of this experiment's snapshot
    earlier_attempts: dict[str, int]  # per step: attempts made by earlier runs (failed ones)
    earlier_counted: dict[str, int]   # per step: those that used up retries, since `retry`
    # markers known to be ours, found or written during this run: Luigi asks whether a step
    # is complete several times per step, and a marker of this snapshot cannot go away
    done: dict[str, Marker] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, ws: Workspace, name: str) -> "Plan":
        output_dir = ws.output_dir(name)
        try:  # the stored record: a run needs its snapshot, not its steps' side files
            record = RunRecord.from_json(read_json(run_record.record_path(output_dir)))
            spec = spec_from_snapshot(record.config)
        except (OSError, ValueError) as exc:
            raise RecordError(f"experiment {name!r}: its run record "
                              f"{run_record.record_path(output_dir)} is missing or damaged "
                              f"({exc})") from None
        since = record.retried_at or 0.0  # `retry` gives a step its retries anew
        return cls(ws, name, output_dir, spec, record.config_sha256,
                   {tid: len(step.failures) for tid, step in record.tasks.items()},
                   {tid: sum(f.counted and (f.ended or 0.0) > since for f in step.failures)
                    for tid, step in record.tasks.items()})

    @property
    def code_folder(self) -> Path:
        """Where Tasks.py is, and the working directory of every step and validate()."""
        return Path(self.spec.path_to_tasks)

    def task_config(self, task: TaskSpec) -> dict[str, Any]:
        return task_config(self.spec, task, self.output_dir)

    @functools.cached_property
    def inputs(self) -> dict[str, str]:
        """Each task's inputs hash: its own config and its upstream tasks' inputs."""
        return run_record.step_inputs(self.spec)

    def marker(self, task_id: str) -> Path:
        return run_record.marker_path(self.output_dir, task_id)

    def finished(self, task_id: str) -> Marker | None:
        """The step's marker if it is one of ours, for this snapshot and these inputs."""
        if task_id in self.done:
            return self.done[task_id]
        marker = Marker.read(self.output_dir, task_id)
        if marker is not None and marker.made_for(self.snapshot, self.inputs[task_id]):
            self.done[task_id] = marker
            return marker
        return None
