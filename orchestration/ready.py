"""``ready``: turn files in ConfigSources into queued experiments, or into clear rejections.

Each file is handled on its own: one bad config never stops the others. Everything that can
reject a config happens before anything is written, then the experiment is committed in an
order that a crash at any point leaves re-runnable: output folder, run record, name link,
and last the move into ConfigsToRun.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ContextManager

from .config.loader import load_config
from .config.schema import ExperimentSpec, check
from .config.tasks_module import TasksLoader
from .config.validate import OutputIndex, check_code, output_path, tasks_folder
from .exceptions import ConfigError
from .fsutil import locked, remove_stale_temp_files
from .records import run_record
from .records.environment import capture_environment
from .records.provenance import ProvenanceCache, compare_remote
from .states import ExperimentState
from .workspace import Workspace

HALF_WRITTEN_SECONDS = 2.0
IMPORT_PROBE_SECONDS = 300.0  # a Tasks.py whose import takes longer is taken to hang


@dataclass
class Outcome:
    """What ``ready`` did with one file."""

    name: str
    queued: bool
    message: str
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReadyContext:
    """Work shared by every config of one ``ready`` call: imports and git capture happen once."""

    ws: Workspace
    base: Path
    loader: TasksLoader = field(default_factory=lambda: TasksLoader(IMPORT_PROBE_SECONDS))
    provenance: ProvenanceCache = field(default_factory=ProvenanceCache)
    in_use: OutputIndex = field(default_factory=OutputIndex)  # a plain dict is indexed
    whole: bool = False  # the files were written atomically (submit): none is half-written

    def __post_init__(self) -> None:
        if not isinstance(self.in_use, OutputIndex):
            self.in_use = OutputIndex(self.in_use)


def ready_lock(ws: Workspace) -> ContextManager[None]:
    """Serialise concurrent ``ready`` calls: names and output folders are checked then taken."""
    return locked(ws.misc / "ready.lock")


def ready_all(ws: Workspace, base: Path | None = None) -> list[Outcome]:
    """Ready every config in ConfigSources."""
    return ready_files(ws, ws.config_files(ExperimentState.NEW), base)


def ready_files(ws: Workspace, paths: list[Path], base: Path | None = None,
                whole: bool = False) -> list[Outcome]:
    outcomes = []
    with ready_lock(ws):
        remove_stale_temp_files(ws.folder(ExperimentState.NEW))
        ctx = ReadyContext(ws=ws, base=base or Path.cwd(), in_use=ws.registered(), whole=whole)
        for path in paths:
            outcomes.append(ready_one(ctx, path))
    return outcomes


def _name_taken(ws: Workspace, name: str) -> ExperimentState | None:
    found = ws.find(name)
    return found[0] if found and found[0] is not ExperimentState.NEW else None


def ready_one(ctx: ReadyContext, path: Path) -> Outcome:
    name = path.stem
    taken = _name_taken(ctx.ws, name)
    if taken is not None:  # a rejection, but left in place: ConfigsFailed may hold that name
        return Outcome(name, False, f"{path}: config rejected and left in ConfigSources/: name "
                       f"{name!r} is already used by an experiment in {taken.folder}/; rename "
                       "the file (names are unique in a workspace)")
    try:
        source = path.read_bytes()
        spec, output_dir, warnings, prov = validate_source(ctx, path, name, source)
    except ConfigError as exc:
        if not ctx.whole and _maybe_half_written(path):
            return Outcome(name, False, f"{path}: left in place, it may still be being "
                           "written (changed in the last 2 s)", skipped=True)
        ctx.ws.fail(path, str(exc))
        return Outcome(name, False, str(exc))
    except FileNotFoundError:
        return Outcome(name, False, f"{path}: gone (taken by another process)", skipped=True)
    record = run_record.new_record(name, spec, output_dir, source, prov, capture_environment(),
                                   warnings)
    commit_experiment(ctx.ws, name, path, output_dir, record)
    ctx.in_use[name] = output_dir
    return Outcome(name, True, f"{name}: queued, output in {output_dir}", warnings=warnings)


def _maybe_half_written(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < HALF_WRITTEN_SECONDS
    except FileNotFoundError:
        return False


def validate_source(ctx: ReadyContext, path: Path, name: str, source: bytes
                    ) -> tuple[ExperimentSpec, Path, list[str], dict]:
    """All checks of one config file; raises ConfigError with every problem found."""
    data = load_config(path, source)
    spec, problems = check(data)
    if spec is None:
        raise ConfigError(path, problems)
    data["pathToTasks"] = str(tasks_folder(spec.path_to_tasks, ctx.base))  # spec.data is data
    return validate_spec(ctx, path, name, replace(spec, path_to_tasks=data["pathToTasks"]))


def validate_spec(ctx: ReadyContext, path: Path, name: str, spec: ExperimentSpec
                  ) -> tuple[ExperimentSpec, Path, list[str], dict]:
    """Checks of a parsed spec against the workspace and the code (also used by ``retry``)."""
    problems: list[str] = []
    output_dir, problem = output_path(ctx.ws, spec.output_dir)
    if problem:
        problems.append(problem)
    elif conflict := ctx.in_use.conflict(output_dir, name):  # type: ignore[arg-type]
        problems.append(conflict)
    elif name not in ctx.in_use and run_record.meta_dir(output_dir).exists():  # type: ignore
        problems.append(f"outputDir: {output_dir} holds the steps of an earlier experiment "
                        "that is no longer in this workspace; choose another outputDir or "
                        "delete that folder")
    folder = Path(spec.path_to_tasks)
    prov = ctx.provenance.capture(folder)  # a missing folder: "no provenance", rejected below
    warnings = list(prov.get("warnings", []))
    if (remote := compare_remote(prov, spec.github_repository)):
        warnings.append(remote)
    if spec.require_clean_git and prov.get("available") and prov.get("dirty"):
        problems.append("requireCleanGit: true, but the repository "
                        f"{prov.get('repo_root')} has uncommitted changes; commit them or set "
                        "requireCleanGit: false (the changes are then recorded as a patch)")
    if not problems:
        problems += check_code(spec, folder, output_dir, ctx.loader)  # type: ignore[arg-type]
    if problems:
        raise ConfigError(path, problems)
    return spec, output_dir, warnings, prov  # type: ignore[return-value]


def commit_experiment(ws: Workspace, name: str, path: Path, output_dir: Path,
                      record: dict) -> None:
    """Create the output folder and record, reserve the name, then queue the config."""
    (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    run_record.meta_dir(output_dir).mkdir(exist_ok=True)
    run_record.write(output_dir, record)
    link = ws.link(name)
    if os.path.lexists(link):
        link.unlink()  # left by a crash between this point and the move below
    ws.register(name, output_dir)
    ws.error_file(path).unlink(missing_ok=True)
    ws.move(path, ExperimentState.QUEUED)
