"""The checks that need the filesystem, the workspace and the user's code.

Run at ``ready`` (and again at ``retry``), all before anything runs: where the output goes,
whether Tasks.py imports, whether each ``method`` is a TaskBase subclass, and each task's
own ``validate()``.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from ..workspace import Workspace
from .schema import ExperimentSpec
from .tasks_module import TasksImportError, TasksLoader, task_classes
from ..taskbase import TaskBase, prepare


def output_path(ws: Workspace, output_dir: str) -> tuple[Path | None, str | None]:
    """``Output/<outputDir>`` after normalising, or a problem when it escapes ``Output/``."""
    if "\x00" in output_dir:
        return None, f"outputDir: {output_dir!r} contains a NUL character"
    pure = PurePosixPath(output_dir)
    if pure.is_absolute() or output_dir.startswith("~"):
        return None, (f"outputDir: {output_dir!r} is absolute; it must be relative to the "
                      "workspace's Output/ folder, e.g. sweep1/lr-0.1")
    if ".." in pure.parts:
        return None, f"outputDir: {output_dir!r} contains '..'; it must stay inside Output/"
    if not pure.parts or pure.parts == (".",):
        return None, (f"outputDir: {output_dir!r} is Output/ itself; it must name a folder "
                      "inside Output/, e.g. sweep1/lr-0.1")
    target = Path(os.path.normpath(ws.output / pure))
    real_output = ws.output.resolve()
    real = target.resolve()  # follows any symlink planted along the way
    if real != real_output and real_output not in real.parents:
        return None, (f"outputDir: {output_dir!r} leads outside Output/ (to {real}) through "
                      "a symlink; remove the link or choose another folder")
    return target, None


class OutputIndex(dict):
    """Experiment name -> output folder, indexed so that a conflict check costs the folder's
    depth, not the number of experiments (``ready`` of 1000 configs must not be quadratic)."""

    def __init__(self, in_use: dict[str, Path] | None = None) -> None:
        super().__init__()
        self._owner: dict[Path, str] = {}
        self._below: dict[Path, set[str]] = {}  # folder -> experiments somewhere inside it
        for name, path in (in_use or {}).items():
            self[name] = path

    def __setitem__(self, name: str, path: Path) -> None:
        super().__setitem__(name, path)
        self._owner[path] = name
        for parent in path.parents:
            self._below.setdefault(parent, set()).add(name)

    def conflict(self, target: Path, own_name: str) -> str | None:
        """A problem when ``target`` equals, contains or lies inside another experiment's
        folder."""
        for folder in (target, *target.parents):
            other = self._owner.get(folder)
            if other is not None and other != own_name:
                return self._message(target, other)
        inside = self._below.get(target, set()) - {own_name}
        return self._message(target, min(inside)) if inside else None

    def _message(self, target: Path, other: str) -> str:
        return (f"outputDir: folder {target} is already used by experiment {other!r} "
                f"({self[other]}); give each experiment its own outputDir")


def tasks_folder(path_to_tasks: str, base: Path) -> Path:
    """``pathToTasks`` made absolute (relative paths are relative to ``base``)."""
    return Path(os.path.normpath(base / Path(path_to_tasks).expanduser()))


def check_code(spec: ExperimentSpec, folder: Path, output_dir: Path,
               loader: TasksLoader) -> list[str]:
    """Import Tasks.py, look up each method and run each task's ``validate()``."""
    if not folder.is_dir():
        return [f"pathToTasks: {spec.path_to_tasks!r} is not a folder; it must be the folder "
                "holding Tasks.py (a relative path is taken from where `ready` runs)"]
    try:
        module = loader.load(folder)
    except TasksImportError as exc:
        return [f"pathToTasks: {exc}"]
    classes = task_classes(module)
    problems = []
    for i, task in enumerate(spec.tasks):
        cls = classes.get(task.method)
        if cls is None:
            other = getattr(module, task.method, None)
            why = ("is not a subclass of orchestration.TaskBase" if other is not None
                   else "is not defined in Tasks.py")
            known = ", ".join(sorted(classes)) or "none"
            problems.append(f"tasks[{i}].method: {task.method!r} {why}; TaskBase subclasses "
                            f"in {folder / 'Tasks.py'}: {known}")
            continue
        problems += [f"tasks[{i}] ({task.id}): {p}" for p in
                     run_validate(cls, spec.task_config(task), task.entry, output_dir)]
    return problems


def run_validate(cls: type[TaskBase], config: dict[str, Any], entry: dict[str, Any],
                 output_dir: Path) -> list[str]:
    """A task's own ``validate()``: it may return problems or raise; both reject the config."""
    try:
        instance = prepare(cls(config), config, entry, output_dir)
        result = instance.validate()
    except Exception as exc:  # user code: any exception is a rejection, not a crash
        return [f"{cls.__name__}.validate() raised {type(exc).__name__}: {exc}"]
    if result is None or result is True:
        return []
    if result is False:
        return [f"{cls.__name__}.validate() returned False"]
    if isinstance(result, str):
        return [result]
    return [str(p) for p in result]
