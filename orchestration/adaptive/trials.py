"""Trial configs (the base config with one trial's parameters set) and objective values.

A trial is an ordinary experiment: its config is the spec's base config with the searched
keys set, the ``search:`` block gone and ``outputDir`` made unique (``<outputDir>/t0001``), so
``status``, ``show``, ``retry``, ``rerun`` and ``results`` treat it like any other. Its result
is read back from its run record: the objective task's returned value.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import yaml
from hydra.core.override_parser.types import OverrideType

from ..config import sweep as sweeps
from ..config.names import show
from ..exceptions import UsageError, WorkspaceError
from ..fsutil import atomic_write
from ..records import run_record
from ..states import ExperimentState, StepState
from ..workspace import Workspace
from .spec import SearchSpec

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def describe(params: Mapping[str, Any], digits: int | None = None) -> str:
    """``lr=0.01 layers=3``: one trial's point (floats to ``digits`` significant digits)."""
    return " ".join(f"{key}={value:.{digits}g}" if digits and isinstance(value, float)
                    else f"{key}={show(value)}" for key, value in params.items())


def trial_config(base: dict[str, Any], name: str, suffix: str,
                 params: Mapping[str, Any]) -> dict[str, Any]:
    """The config of trial ``name``: ``base`` with ``params`` set at their dotted keys (added
    where ``base`` lacks them) and ``outputDir`` extended by ``suffix``."""
    point = {k: v for k, v in base.items() if k != "search"}
    point["outputDir"] = f"{str(base['outputDir']).rstrip('/')}/{suffix}"
    for key, value in params.items():
        axis = sweeps.Axis(key, (value,), OverrideType.FORCE_ADD, f"search.params.{key}")
        try:
            sweeps.assign(point, sweeps.locate(point, axis, f"the config of {name}"), value)
        except (UsageError, TypeError) as exc:
            raise UsageError(f"{exc}; search.params.{key} must name a key whose parents are "
                             "mappings") from None
    return point


def render(data: dict[str, Any], header: list[str]) -> bytes:
    body = yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)
    return ("".join(f"# {line}\n" for line in header) + body).encode()


def write(ws: Workspace, name: str, text: bytes) -> Path:
    """Put trial ``name``'s config into ConfigSources, unless a crash left it there (or
    further along) already."""
    found = ws.find(name)
    if found is not None:
        return found[1]
    path = ws.folder(ExperimentState.NEW) / f"{name}.yaml"
    atomic_write(path, text)
    return path


def objective_value(ws: Workspace, name: str, spec: SearchSpec) -> tuple[float | None, str]:
    """The objective of a completed trial from its run record, or None and why not."""
    try:
        record = run_record.load(ws.output_dir(name))
    except (WorkspaceError, OSError, ValueError) as exc:
        return None, f"its run record cannot be read ({exc})"
    task = record.tasks.get(spec.objective_task)
    if task is None:
        return None, f"it has no task {spec.objective_task!r}"
    if task.state is not StepState.COMPLETED:
        return None, f"its task {spec.objective_task!r} did not complete"
    value = task.result
    for i, key in enumerate(spec.objective_key):
        if not isinstance(value, Mapping) or key not in value:
            where = ".".join((spec.objective_task, *spec.objective_key[:i]))
            return None, (f"objective {spec.objective}: {where} returned {_short(value)}, "
                          f"which has no key {key!r}")
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"objective {spec.objective} is {_short(value)}, not a finite number"
    return float(value), ""


def failure_reason(ws: Workspace, name: str) -> str:
    """The first line of a failed experiment's ``.error.txt``."""
    path = ws.folder(ExperimentState.FAILED) / f"{name}.yaml"
    try:
        lines = ws.error_file(path).read_text().strip().splitlines()
    except OSError:
        return "failed"
    return lines[0][:300] if lines else "failed"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
