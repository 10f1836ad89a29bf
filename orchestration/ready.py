"""``ready``: turn files in ConfigSources into queued experiments, or into clear rejections.

Each file is judged on its own: one bad config never stops the others, and whatever one file
holds (odd keys, huge numbers, deep graphs, long names) is that file's rejection. Everything
that can reject a config happens before anything is written, in three passes:

1. per file, in this process (which never imports user code): read (at most the size cap),
   parse, resolve, schema, output folder, name, code state;
2. per code folder, in a code host of its own (``codehost``): import Tasks.py once, look up
   each method, and run each task's ``validate()`` in a fork, in the code folder;
3. per file, in order: commit (``lifecycle.queue``) or reject (``lifecycle.reject``).

A file changed in the last ``SETTLE_SECONDS`` may still be being written (a file cut off
mid-write often parses, with keys missing): ``ready`` waits until it has settled, then
judges it, so an immediate ``ready`` after a copy gives the right answer and exit status.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, ContextManager

from . import lifecycle, luigi_config
from .adaptive import legacy as legacy_search
from .codehost import CodeHost
from .config.loader import MAX_BYTES, load_config
from .config.schema import ExperimentSpec, check
from .config.validate import MAX_COMPONENT_BYTES, OutputIndex, output_path, tasks_folder
from .exceptions import ConfigError, TasksImportError
from .fsutil import atomic_write, locked, remove_stale_temp_files
from .plan import task_config
from .records import run_record
from .records.environment import capture_environment
from .records.provenance import Provenance, ProvenanceCache, compare_remote
from .records.run_record import Marker, RunRecord
from .remove import TRASH, remove
from .sandbox import AttemptRequest
from .states import ExperimentState
from .workspace import Workspace

SETTLE_SECONDS = 2.0
SETTLE_LIMIT_SECONDS = 30.0  # a file still changing after this is left for the next ready
VALIDATE_TIMEOUT = 300.0     # a validate() that takes longer is taken to hang


@dataclass
class Outcome:
    """What ``ready`` did with one file."""

    name: str
    queued: bool
    message: str
    skipped: bool = False    # left in ConfigSources, not judged (not a rejection)
    warnings: list[str] = field(default_factory=list)
    follow: list[Path] = field(default_factory=list)  # configs it wrote, judged in this call
    search: bool = False     # it started a search (its trials are ``follow``), not one run


@dataclass
class Candidate:
    """A config that passed the checks of pass 1, waiting for its code's verdict."""

    name: str
    path: Path
    source: bytes
    spec: ExperimentSpec
    output_dir: Path
    provenance: Provenance
    warnings: list[str]
    problems: list[str] = field(default_factory=list)
    displaced: str | None = None  # overwriteOutputFine: the experiment whose folder it takes

    @property
    def folder(self) -> Path:
        return Path(self.spec.path_to_tasks)


def ready_lock(ws: Workspace) -> ContextManager[int]:
    """Serialise ``ready``-like commands: names and output folders are checked, then taken."""
    return locked(ws.misc / "ready.lock")


Progress = Callable[[str, int, int], None]  # (what is being done, done, total)


def ready_all(ws: Workspace, base: Path | None = None,
              progress: Progress | None = None) -> list[Outcome]:
    """Ready every config in ConfigSources (listed once the lock is ours: a racing ``ready``
    took the files it queued, and losing that race is not a rejection)."""
    with ready_lock(ws):
        return Readier(ws, base).run(ws.config_files(ExperimentState.NEW), progress)


def ready_files(ws: Workspace, paths: list[Path], base: Path | None = None,
                whole: bool = False, progress: Progress | None = None) -> list[Outcome]:
    """Ready ``paths``; ``whole``: written atomically (``submit``), so none needs to settle."""
    with ready_lock(ws):
        return Readier(ws, base, whole).run(paths, progress)


class Readier:
    """The work of one ``ready`` call (``retry`` and ``rerun`` use it too): git captures and
    code hosts are shared by every config, the output index is built once."""

    def __init__(self, ws: Workspace, base: Path | None = None, whole: bool = False) -> None:
        self.ws, self.base, self.whole = ws, base or Path.cwd(), whole
        self.provenance = ProvenanceCache()
        self.in_use = OutputIndex(ws.registered())
        self.environment = capture_environment()
        self.limits = luigi_config.resource_limits()  # luigid's [resources], if configured

    # --- the whole call ---------------------------------------------------------------------
    def run(self, paths: list[Path], progress: Progress | None = None) -> list[Outcome]:
        report = progress or (lambda what, done, total: None)
        remove_stale_temp_files(self.ws.folder(ExperimentState.NEW))
        settled, unsettled = (paths, []) if self.whole else settle(paths)
        paths = [*settled]  # grows by what a file writes (a 0.0.7 search's trials)
        results: list[Candidate | Outcome] = []
        for i, path in enumerate(paths):
            report("checking", i, len(paths))
            results.append(self.prepare_file(path))
            paths += results[-1].follow if isinstance(results[-1], Outcome) else []
        self.validate([r for r in results if isinstance(r, Candidate)], report)
        outcomes = []
        for i, result in enumerate(results):
            report("queueing", i, len(results))
            outcomes.append(result if isinstance(result, Outcome) else self.commit(result))
        report("done", len(results), len(results))
        for path in unsettled:
            outcomes.append(Outcome(path.stem, False, f"{path}: left in place: it kept "
                                    f"changing for {SETTLE_LIMIT_SECONDS:g} s (still being "
                                    "written?); run ready again once it is complete",
                                    skipped=True))
        return outcomes

    # --- pass 1 -----------------------------------------------------------------------------
    def prepare_file(self, path: Path) -> Candidate | Outcome:
        name = path.stem
        if not path.exists() and not path.is_symlink():
            return Outcome(name, False, f"{path}: gone (taken by another process)",
                           skipped=True)
        if (problem := _name_problem(name)) is not None:
            # left in place: its error file may not fit beside it (NAME_MAX), and renaming
            # the file is the fix, as for a taken name
            return Outcome(name, False, f"{path}: config rejected and left in ConfigSources/:"
                           f" {problem}")
        if (state := self._name_taken(name)) is not None:
            # a rejection, but left in place: ConfigsFailed may hold that name already
            return Outcome(name, False, f"{path}: config rejected and left in ConfigSources/:"
                           f" name {name!r} is already used by an experiment in "
                           f"{state.folder}/; rename the file (names are unique in a "
                           "workspace)")
        try:
            source = self._read(path)
            started = legacy_search.start_at_ready(self, path, source)  # 0.0.7 grid search
            return started or self.candidate(path, name, source)
        except ConfigError as exc:
            return self.reject(path, str(exc))
        except FileNotFoundError:
            return Outcome(name, False, f"{path}: gone (taken by another process)",
                           skipped=True)

    def candidate(self, path: Path, name: str, source: bytes) -> Candidate:
        """Pass 1 for the config text ``source`` (read from ``path``, or to be written there:
        a search checks its first trial so); raises ConfigError."""
        data = load_config(path, source)
        spec, problems = check(data)
        if spec is None:
            raise ConfigError(path, problems)
        data["pathToTasks"] = str(tasks_folder(spec.path_to_tasks, self.base))
        data["outputDir"] = expand_date_time(spec.output_dir)
        spec = replace(spec, path_to_tasks=data["pathToTasks"], output_dir=data["outputDir"])
        return self.prepare_spec(path, name, spec, source)

    def prepare_spec(self, path: Path, name: str, spec: ExperimentSpec, source: bytes,
                     own_name: str | None = None) -> Candidate:
        """The checks of a parsed spec against the workspace (also for ``retry``/``rerun``:
        ``own_name`` is the experiment whose folder the spec may keep). Raises ConfigError."""
        problems = luigi_config.resource_problems(
            [(t.id, t.resources) for t in spec.tasks], self.limits)
        if (problem := _name_problem(name)) is not None:
            problems.append(problem)
        output_dir, problem = output_path(self.ws, spec.output_dir)
        displaced = None
        if problem:
            problems.append(problem)
        else:
            assert output_dir is not None
            displaced, problem = self._folder_problem(spec, name, output_dir, own_name)
            if problem:
                problems.append(problem)
        prov = self.provenance.capture(spec.path_to_tasks)
        warnings = list(prov.warnings)
        if (remote := compare_remote(prov, spec.github_repository)):
            warnings.append(remote)  # every record keeps it; the CLI prints it once
        if spec.require_clean_git and prov.available and prov.dirty:
            problems.append("requireCleanGit: true, but the repository "
                            f"{prov.repo_root} has uncommitted changes; commit them or set "
                            "requireCleanGit: false (the changes are then recorded as a patch)")
        if not Path(spec.path_to_tasks).is_dir():
            problems.append(f"pathToTasks: {spec.path_to_tasks!r} is not a folder; it must be "
                            "the folder holding Tasks.py (a relative path is taken from where "
                            "`ready` runs)")
        if problems:
            raise ConfigError(path, problems)
        return Candidate(name, path, source, spec, output_dir, prov,  # type: ignore[arg-type]
                         warnings, displaced=displaced)

    def _folder_problem(self, spec: ExperimentSpec, name: str, output_dir: Path,
                        own_name: str | None) -> tuple[str | None, str | None]:
        """Whether ``output_dir`` is free for this config: (an experiment it displaces with
        ``overwriteOutputFine``, a problem)."""
        overwrite = spec.data.get("overwriteOutputFine", False)
        other = self._occupant(output_dir, {name, own_name})
        if other is not None:
            state = self.ws.find(other)
            if overwrite and state is not None and state[0] in (ExperimentState.COMPLETED,
                                                                ExperimentState.FAILED):
                return other, None
            return None, self.in_use.conflict_message(output_dir, other)
        snapshot = run_record.config_hash(spec.data)
        foreign = _foreign_markers(output_dir, snapshot)
        if foreign and own_name is None and not overwrite:
            return None, (f"outputDir: {output_dir} holds {len(foreign)} finished step(s) of "
                          "an earlier run of a different config "
                          f"({', '.join(sorted(foreign)[:3])}); they never count for this one."
                          " Choose another outputDir, or set overwriteOutputFine: true to move "
                          f"the old contents to Misc/{TRASH}/ (or `job-orchestration remove` "
                          "the experiment that made them)")
        return None, None

    def _occupant(self, output_dir: Path, keep: set[str | None]) -> str | None:
        """An experiment (other than ``keep``) whose folder is, holds or lies in
        ``output_dir``; a name whose config is nowhere any more (deleted by hand, or by a
        ``remove`` cut short) does not count."""
        return min((o for o in self.in_use.occupants(output_dir)
                    if o not in keep and self._exists(o)), default=None)

    def _exists(self, name: str) -> bool:
        found = self.ws.find(name)
        return found is not None and found[0] is not ExperimentState.NEW

    def _name_taken(self, name: str) -> ExperimentState | None:
        found = self.ws.find(name)
        return found[0] if found and found[0] is not ExperimentState.NEW else None

    def _read(self, path: Path) -> bytes:
        """The file's bytes (at most the cap: a huge file is never read whole). A symlink is
        replaced by a copy of what it points to: the queue must not depend on a file that
        can be moved away under it."""
        if path.is_symlink():
            if not path.is_file():
                raise ConfigError(path, [f"is a symlink to {os.readlink(path)!r}, which is not "
                                         "a file; copy the config here instead"])
            source = self._read_capped(path)
            atomic_write(path, source)  # replaces the link itself
            return source
        return self._read_capped(path)

    @staticmethod
    def _read_capped(path: Path) -> bytes:
        """At most the cap (+1 byte, to see a file that grew meanwhile): a huge file is
        refused by its size, never read whole."""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            source = fh.read(MAX_BYTES + 1) if size <= MAX_BYTES else b""
        if size > MAX_BYTES or len(source) > MAX_BYTES:
            raise ConfigError(path, [f"file is {max(size, len(source))} bytes; a config may be "
                                     f"at most {MAX_BYTES} bytes (1 MiB): keep large data in "
                                     "files the tasks read"])
        return source

    def reject(self, path: Path, reason: str) -> Outcome:
        try:
            lifecycle.reject(self.ws, path, reason)
        except FileNotFoundError:
            return Outcome(path.stem, False, f"{path}: gone (taken by another process)",
                           skipped=True)
        return Outcome(path.stem, False, reason)

    # --- pass 2 -----------------------------------------------------------------------------
    def validate(self, candidates: list[Candidate], report: Progress | None = None) -> None:
        """Each code folder's configs, in a code host of that folder: methods and the
        tasks' own ``validate()``. Problems go into each candidate."""
        by_folder: dict[Path, list[Candidate]] = defaultdict(list)
        done = 0
        for candidate in candidates:
            by_folder[candidate.folder].append(candidate)
        for folder, group in by_folder.items():
            try:
                host = CodeHost.start(folder)
            except TasksImportError as exc:
                for candidate in group:
                    candidate.problems.append(f"pathToTasks: {exc}")
                continue
            try:
                for candidate in group:
                    if report is not None:
                        report("validating", done, len(candidates))
                    done += 1
                    candidate.problems += _validate_with(host, candidate)
            finally:
                host.close()

    # --- pass 3 -----------------------------------------------------------------------------
    def commit(self, candidate: Candidate,
               annotate: Callable[[RunRecord], None] = lambda record: None) -> Outcome:
        """Queue a validated candidate (``annotate`` adds to its new record), or reject it."""
        if candidate.problems:
            return self.reject(candidate.path, str(ConfigError(candidate.path,
                                                                candidate.problems)))
        other = self._occupant(candidate.output_dir, {candidate.name, candidate.displaced})
        if other is not None:  # a config earlier in this call took the folder meanwhile
            conflict = self.in_use.conflict_message(candidate.output_dir, other)
            return self.reject(candidate.path, str(ConfigError(candidate.path, [conflict])))
        if candidate.displaced is not None or _foreign_markers(
                candidate.output_dir, run_record.config_hash(candidate.spec.data)):
            self.displace(candidate)
        record = self.record(candidate)
        annotate(record)
        try:
            lifecycle.queue(self.ws, candidate.path, record)
        except FileNotFoundError:
            return Outcome(candidate.name, False, f"{candidate.path}: gone (taken by another "
                           "process)", skipped=True)
        self.in_use[candidate.name] = candidate.output_dir
        _write_config_copy(candidate)
        return Outcome(candidate.name, True, f"{candidate.name}: queued, output in "
                       f"{candidate.output_dir}", warnings=candidate.warnings)

    def record(self, candidate: Candidate) -> RunRecord:
        spec = candidate.spec
        return RunRecord.new(candidate.name, spec.data, [(t.id, t.method) for t in spec.tasks],
                             candidate.output_dir, candidate.source, candidate.provenance,
                             self.environment, candidate.warnings, readied_in=self.base)

    def displace(self, candidate: Candidate) -> None:
        """``overwriteOutputFine``: what the folder held goes to ``Misc/trash/`` (never
        deleted: 0.0.7 deleted trained models here), and an experiment that owned it leaves
        the workspace with it."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        trash = self.ws.misc / TRASH / f"{candidate.name}-{stamp}"
        trash.mkdir(parents=True, exist_ok=True)
        if candidate.displaced is not None:
            remove(self.ws, candidate.displaced, keep_output=False, trash=trash)
            candidate.warnings.append(f"overwriteOutputFine: experiment "
                                      f"{candidate.displaced!r} used {candidate.output_dir}; "
                                      f"it and its outputs were moved to {trash}")
        if candidate.output_dir.exists():
            shutil.move(str(candidate.output_dir), str(trash / "output"))
            candidate.warnings.append(f"overwriteOutputFine: the old contents of "
                                      f"{candidate.output_dir} were moved to {trash / 'output'}")


def _name_problem(name: str) -> str | None:
    size = len(os.fsencode(name))
    if size <= MAX_COMPONENT_BYTES:
        return None
    return (f"the file name is {size} bytes long; an experiment's name may be at most "
            f"{MAX_COMPONENT_BYTES}: shorten the file name")


def _validate_with(host: CodeHost, candidate: Candidate) -> list[str]:
    """One config's methods and ``validate()`` calls, in ``host`` (a fork per task whose
    class has its own ``validate``: nothing one config's check does reaches another's)."""
    problems = []
    for i, task in enumerate(candidate.spec.tasks):
        if task.method not in host.classes:
            known = ", ".join(host.classes) or "none"
            why = ("is not a subclass of orchestration.TaskBase" if task.method in host.others
                   else "is not defined in Tasks.py")
            problems.append(f"tasks[{i}].method: {task.method!r} {why}; TaskBase subclasses "
                            f"in {candidate.folder / 'Tasks.py'}: {known}")
            continue
        if task.method not in host.validating:
            continue  # no validate() of its own: nothing to run
        outcome = host.call("validate", task.method,
                            task_config(candidate.spec, task, candidate.output_dir),
                            task.entry, candidate.output_dir,
                            AttemptRequest(log=None, timeout=VALIDATE_TIMEOUT,
                                           cwd=str(candidate.folder)))
        if outcome.ok:
            found = outcome.result or []
        else:
            found = [f"{task.method}.validate() did not finish: {outcome.failure.detail}"]
        problems += [f"tasks[{i}] ({task.id}): {p}" for p in found]
    return problems


def _foreign_markers(output_dir: Path, snapshot: str) -> list[str]:
    """Steps finished in ``output_dir`` for another snapshot (or by another version)."""
    foreign = []
    for path in run_record.meta_dir(output_dir).glob("*.done.json"):
        task_id = path.name[:-len(".done.json")]
        marker = Marker.read(output_dir, task_id)
        if marker is None or marker.snapshot != snapshot:
            foreign.append(task_id)
    return foreign


def _write_config_copy(candidate: Candidate) -> None:
    """The resolved config as ``config.yaml`` in the output folder, where 0.0.7's results
    scripts look for it (and where a person browsing outputs expects it)."""
    import yaml

    try:
        atomic_write(candidate.output_dir / "config.yaml",
                     yaml.safe_dump(candidate.spec.data, sort_keys=False, allow_unicode=True),
                     durable=False)
    except OSError:
        pass  # a convenience copy: the run record is what counts


def expand_date_time(output_dir: str) -> str:
    """0.0.7's ``{date}`` and ``{time}`` in ``outputDir`` (``%Y_%m_%d``, ``%H_%M_%S``)."""
    if "{date}" not in output_dir and "{time}" not in output_dir:
        return output_dir
    now = datetime.now()
    return output_dir.replace("{date}", now.strftime("%Y_%m_%d")).replace(
        "{time}", now.strftime("%H_%M_%S"))


def settle(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Wait until every file has settled: last changed ``SETTLE_SECONDS`` ago, or (a clock
    skewed ahead, on a file server) seen unchanged by us for that long. Bounded by
    ``SETTLE_LIMIT_SECONDS``; returns (settled, still changing)."""
    start = time.monotonic()
    seen: dict[Path, tuple[tuple[int, int], float]] = {}  # path -> (size, mtime), since when
    while True:
        now, wait = time.time(), 0.0
        for path in paths:
            try:
                st = path.stat()
            except OSError:  # gone, or a dangling link: judged (or skipped) as it is
                continue
            key = (st.st_size, st.st_mtime_ns)
            if seen.get(path, (None, 0.0))[0] != key:
                seen[path] = (key, time.monotonic())
            unchanged = time.monotonic() - seen[path][1]
            left = min(SETTLE_SECONDS - (now - st.st_mtime), SETTLE_SECONDS - unchanged)
            wait = max(wait, left)
        if wait <= 0:
            return paths, []
        if time.monotonic() - start + wait > SETTLE_LIMIT_SECONDS:
            still = [p for p in paths if time.monotonic() - seen.get(p, (0, 0.0))[1]
                     < SETTLE_SECONDS]
            return [p for p in paths if p not in still], still
        time.sleep(max(wait, 0.05))  # waiting for files to settle, by design


def _changed_lately(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < SETTLE_SECONDS
    except OSError:
        return False

