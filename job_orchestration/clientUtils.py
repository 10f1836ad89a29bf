"""0.0.7's scripting helpers: ``saveConfigs`` writes configs through ``orchestration.submit``;
``getResults`` reads the results files tasks wrote into their output folders.

``getResults`` finds them through the workspace's experiments (state from the folder its config
is in, config and times from ``run.json``) and also in the output folders 0.0.7 left behind
(``config.yaml`` and ``status.yaml`` beside the results), so analysis scripts keep covering
old runs. The values tasks *return* are in ``orchestration.results`` instead.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from orchestration.exceptions import ConfigError, UsageError
from orchestration.records import run_record
from orchestration.records.summary import listed
from orchestration.states import ExperimentState, StepState
from orchestration.workspace import Workspace

from .configBase import Dict2Class

__all__ = ["Config", "StatusTracker", "getResults", "saveConfigs"]

LEGACY_STATES = {"READY": ExperimentState.QUEUED, "FINISHED_TASK": ExperimentState.QUEUED,
                 "FAILED_TASK": ExperimentState.QUEUED, "RUNNING_TASK": ExperimentState.RUNNING,
                 "COMPLETE": ExperimentState.COMPLETED, "FAILED": ExperimentState.FAILED}


class Config(Dict2Class):
    """An experiment's config as a ``configFilter`` sees it: ``raw_config`` (the resolved
    config) and each key as an attribute."""

    @property
    def raw_config(self) -> Mapping[str, Any]:
        return self.raw_dict


@dataclass(frozen=True)
class StatusTracker:
    """An experiment's state and times as a ``statusFilter`` sees it (local, naive datetimes,
    as 0.0.7's were)."""

    state: ExperimentState
    start_time: datetime | None
    end_time: datetime | None
    current_task: str | None


ConfigFilter = Callable[[Config], bool]
StatusFilter = Callable[[StatusTracker], bool]


def getResults(resultsFilename: str = "results.yaml", configFilter: ConfigFilter | None = None,
               statusFilter: StatusFilter | None = None, *,
               workspace: str | os.PathLike | None = None) -> list[Any]:
    """The parsed ``resultsFilename`` (YAML) of every experiment that wrote one into its output
    folder and passes both filters."""
    ws = Workspace.from_setting(workspace)
    found = []
    for folder, read in _runs(ws):
        path = folder / resultsFilename
        if not path.is_file():
            continue
        if configFilter is not None or statusFilter is not None:
            config, status = read()
            if configFilter is not None and not configFilter(Config(config)):
                continue
            if statusFilter is not None and not statusFilter(status):
                continue
        with open(path, encoding="utf-8") as fh:
            found.append(yaml.safe_load(fh))
    return found


def saveConfigs(configs: Mapping[str, Mapping[str, Any]], *,
                workspace: str | os.PathLike | None = None) -> list[str]:
    """Write each ``{filename: config}`` into ConfigSources through ``orchestration.submit``:
    checked before it is written, never over another file, a duplicate of an existing
    experiment skipped. Returns the experiment names written (a taken name gets a suffix)."""
    ws = Workspace.from_setting(workspace)
    from orchestration import submit

    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="job_orchestration-saveConfigs-") as tmp:
        for filename, config in configs.items():
            if not filename or Path(filename).name != filename or filename.startswith("."):
                raise UsageError(f"saveConfigs: {filename!r} is not a plain file name such as "
                                 "'config_1.yaml'")
            path = Path(tmp) / filename
            path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
            try:
                names += submit(path, workspace=ws)
            except ConfigError as exc:  # name the caller's file, not the temporary copy
                done = f" (saveConfigs wrote the ones before it: {', '.join(names)})"
                raise ConfigError(filename + (done if names else ""), exc.problems) from None
    return names


Reader = Callable[[], "tuple[dict[str, Any], StatusTracker]"]


def _runs(ws: Workspace) -> Iterator[tuple[Path, Reader]]:
    """Every output folder with a way to read its config and status (only when filtered)."""
    for state, _name, _path, folder in listed(ws):
        if folder is not None:
            output_dir = Path(folder)
            yield output_dir, lambda o=output_dir, s=state: _read_record(o, s)
    yield from _legacy_runs(ws.output, set(ws.registered().values()))


def _read_record(output_dir: Path, state: ExperimentState) -> tuple[dict, StatusTracker]:
    record = run_record.load(output_dir)
    starts = [a["started"] for a in record.attempts if a.get("started")]
    running = [tid for tid, step in record.tasks.items() if step.state is StepState.RUNNING]
    return record.config, StatusTracker(
        state, _time(starts[0] if starts else None), _time(record.ended),
        running[0] if running else None)


def _legacy_runs(output: Path, ours: set[Path]) -> Iterator[tuple[Path, Reader]]:
    """Output folders 0.0.7 made (``config.yaml`` + ``status.yaml``), skipping ours."""
    for dirpath, dirnames, filenames in os.walk(output):
        folder = Path(dirpath)
        if folder in ours:
            dirnames[:] = []
        elif "status.yaml" in filenames and "config.yaml" in filenames:
            dirnames[:] = []
            yield folder, lambda f=folder: _read_legacy(f)


def _read_legacy(folder: Path) -> tuple[dict, StatusTracker]:
    config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    status = yaml.safe_load((folder / "status.yaml").read_text(encoding="utf-8")) or {}
    return config, StatusTracker(
        LEGACY_STATES.get(status.get("status"), ExperimentState.QUEUED),
        _time(status.get("start_time")), _time(status.get("end_time")),
        status.get("current_job"))


def _time(value: float | str | None) -> datetime | None:
    """A record's epoch seconds or 0.0.7's ``str(datetime)`` ('None' when unset)."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value)
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
