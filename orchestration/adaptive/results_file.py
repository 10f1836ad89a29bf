"""``search.results_file``: a search's completed trials as one YAML file, in the shape
job-orchestration 0.0.7's grid search wrote to its ``resultsFilepath``: a list with one
mapping per completed trial, its parameter values and ``result`` (what the objective task
returned, whole), keys sorted as 0.0.7's ``yaml.dump`` sorted them.

0.0.7 appended to the file inside a trial; here the file is rewritten whole (atomically)
under the search's lock whenever the set of completed trials changed, so no two workers
interleave and the file is complete once the search has ended. Which set it was last written
for is a digest in the ledger: a worker killed between a tell and the write leaves a digest
that differs, and the next reconcile writes the file (``Ledger.completed_digest``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..exceptions import ConfigError, WorkspaceError
from ..fsutil import atomic_write
from ..records import run_record
from ..workspace import Workspace
from . import study as studies
from .spec import SearchSpec
from .store import Ledger, Told

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def place(ws: Workspace, output_dir: str, value: str, key: str, spec_path: Path) -> Path:
    """The absolute path of the results file: ``value`` taken relative to the search's output
    folder (``Output/<outputDir>/``), or as it is when absolute. It must lie in ``Output/``
    (links followed): the file is written by the workers, never outside the workspace."""
    output = Path(os.path.realpath(ws.output))
    path = Path(os.path.realpath(output / output_dir / value))
    if path == output or output not in path.parents:
        raise ConfigError(spec_path, [
            f"{key}: {value!r} leads to {path}, outside the workspace's Output/ folder; give a "
            f"path relative to Output/{output_dir}/ (e.g. results.yaml), where the search "
            "writes it"])
    if path.is_dir():
        raise ConfigError(spec_path, [f"{key}: {path} is a folder; name a file in it, e.g. "
                                      f"{value.rstrip('/')}/results.yaml"])
    return path


def rows(ws: Workspace, spec: SearchSpec, study: "studies.optuna.Study",
         ledger: Ledger) -> list[dict[str, Any]]:
    """One mapping per completed trial, in the order the trials were asked (one pass over
    the study: a retried trial's completed copy holds its parameters as well)."""
    every = studies.trials(study)
    out = []
    for name, entry in ledger.trials.items():
        if entry.told != Told.COMPLETED:
            continue
        params = every[entry.number].params
        row = {p.name: params.get(p.name) for p in spec.params}
        row["result"] = _returned(ws, name, spec.objective_task)
        out.append(row)
    return out


def write(path: Path, data: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, yaml.dump(data, Dumper=_DUMPER, sort_keys=True,
                                 default_flow_style=False, allow_unicode=True))


def _returned(ws: Workspace, name: str, task_id: str) -> Any:
    try:
        task = run_record.load(ws.output_dir(name)).tasks.get(task_id)
    except (WorkspaceError, OSError, ValueError):
        return None
    return None if task is None else task.result
