"""``submit``: write one config per point of a sweep into ConfigSources, skipping duplicates.

The written files keep the base config's ``${...}`` interpolations with the point's values
set, because ``ready`` is where a config is resolved (timestamps, allowed environment
variables) and the file should still read like the one the user wrote; only a relative
``pathToTasks`` is written absolute (taken from where ``submit`` runs, as ``ready`` would),
so the files ready from anywhere. A comment header names the base and the point, and the
sha256 of the YAML below it (``text_sha256``), plus the resolved config's hash
(``config_sha256``) when that depends on the text alone (no ``${now:...}``, no environment).

A point is a duplicate of an experiment of the workspace (any state) or of an earlier point
of the same call when either
- its YAML text is the text ``submit`` wrote for that experiment (the header's
  ``text_sha256``, checked against the text below it): recognised without resolving, which
  is what makes resubmitting 1000 points cheap; with ``${now:...}`` in the base, this is the
  only way a point is a duplicate (same submitted text), since each resolution stamps a new
  time; or
- its resolved config hashes like the ``config_sha256`` ``ready`` records (from the header,
  else ``run.json``, else by resolving a config not readied yet): only points not recognised
  by their text are resolved, and only then are other experiments' hashes looked up.
"""
from __future__ import annotations

import hashlib
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import sweep as sweeps
from .config.loader import load_config, our_resolvers
from .config.names import show, unique_name
from .config.points import Planned, Planner, absolute_tasks, parse_once
from .exceptions import ConfigError, UsageError, WorkspaceError
from .fsutil import atomic_write_all
from .ready import Outcome, Progress, ready_files, ready_lock
from .records import run_record
from .states import ExperimentState
from .workspace import Workspace

HEADER = b"# written by `job-orchestration submit`"
HASH_LINE = re.compile(rb"^# (?:config_sha256: ([0-9a-f]{64}), )?text_sha256: ([0-9a-f]{64})\n",
                       re.M)


@dataclass(frozen=True)
class Point:
    """One point of a submission: written (or, in a dry run, to be written) or skipped."""

    name: str            # for a skipped point: the name it would have had
    label: str           # "lr=0.1 seed=2": what makes this point
    config_sha256: str | None  # None: a duplicate by its text whose hash depends on time
    duplicate_of: str | None = None    # the experiment with the identical config or text
    duplicate_state: ExperimentState | None = None  # the folder it is in
    renamed: bool = False  # the readable name was taken (or too long): a hash was added


class Submitted(list):
    """The names written, in sweep order: ``names = submit(...)``. Details as attributes:
    ``points`` (every point), ``skipped`` (the duplicates), ``outcomes`` (what ``ready`` did,
    with ``ready=True``), ``rejected`` (names ``ready`` rejected) and ``dry_run``."""

    def __init__(self, points: list[Point], outcomes: list[Outcome], dry_run: bool) -> None:
        super().__init__(p.name for p in points if p.duplicate_of is None)
        self.points = points
        self.skipped = [p for p in points if p.duplicate_of is not None]
        self.outcomes = outcomes
        self.dry_run = dry_run

    @property
    def rejected(self) -> list[str]:
        return [o.name for o in self.outcomes if not o.queued and not o.skipped]


def snapshot_hash(resolved: dict, base: Path) -> str:
    """The ``config_sha256`` that ``ready`` run in ``base`` records for this resolved config."""
    if isinstance(resolved.get("pathToTasks"), str):
        resolved = {**resolved, "pathToTasks": absolute_tasks(resolved["pathToTasks"], base)}
    return run_record.config_hash(resolved)


def header_hashes(text: bytes) -> tuple[str, str | None] | None:
    """(text_sha256, config_sha256 or None) from a header ``submit`` wrote, if the text below
    it is unchanged since; None for any other file."""
    match = HASH_LINE.search(text, 0, 4096) if text.startswith(HEADER) else None
    if match and hashlib.sha256(text[match.end():]).hexdigest() == match[2].decode():
        return match[2].decode(), match[1].decode() if match[1] else None
    return None


# --- the workspace's experiments ------------------------------------------------------------
class WorkspaceIndex:
    """Every experiment of a workspace by text hash (cheap: from the headers) and, when a
    point needs it, by config hash; and every name in use."""

    def __init__(self, ws: Workspace, cwd: Path) -> None:
        self.ws, self.cwd = ws, cwd
        self.by_text: dict[str, tuple[str, ExperimentState, str | None]] = {}
        self.by_config: dict[str, tuple[str, ExperimentState]] = {}
        self.names: set[str] = set()
        self._unhashed: list[tuple[Path, ExperimentState]] | None = []

    @classmethod
    def scan(cls, ws: Workspace, cwd: Path) -> "WorkspaceIndex":
        index = cls(ws, cwd)
        for state in ExperimentState:
            for path in ws.config_files(state):
                try:
                    hashes = header_hashes(path.read_bytes())
                except OSError:  # moved on by a worker meanwhile: it is in a later folder
                    continue
                index.add(path.stem, state, *(hashes or (None, None)))
                if hashes is None and index._unhashed is not None:
                    index._unhashed.append((path, state))
        index.names.update(ws.registered())
        return index

    def add(self, name: str, state: ExperimentState, text: str | None,
            config: str | None) -> None:
        self.names.add(name)
        if text:
            self.by_text.setdefault(text, (name, state, config))
        if config:
            self.by_config.setdefault(config, (name, state))

    def same_config(self, digest: str) -> tuple[str, ExperimentState] | None:
        """The experiment whose resolved config hashes to ``digest``; the hashes not in a
        header are looked up on the first call (readied: ``run.json``; new: resolved)."""
        if self._unhashed is not None:
            registered = self.ws.registered()
            for path, state in self._unhashed:
                found = (_recorded_hash(registered[path.stem])
                         if state is not ExperimentState.NEW and path.stem in registered
                         else _resolved_hash(path, self.cwd))
                if found:
                    self.by_config.setdefault(found, (path.stem, state))
            self._unhashed = None
        return self.by_config.get(digest)


def _recorded_hash(output_dir: Path) -> str | None:
    try:
        return run_record.load(output_dir).config_sha256
    except (OSError, ValueError):
        return None


def _resolved_hash(path: Path, cwd: Path) -> str | None:
    """The hash of a config not readied yet; None when it cannot be loaded (``ready`` would
    reject it, so no valid point equals it)."""
    try:
        return snapshot_hash(load_config(path), cwd)
    except (ConfigError, OSError):
        return None


# --- writing --------------------------------------------------------------------------------
def _text(plan: Planned, base: Path) -> bytes:
    lines = [HEADER + f" from {show(str(base.absolute()))}".encode(),
             f"# {plan.label or '(no overrides)'}; ${{...}} are resolved at `ready`".encode()]
    if plan.deterministic:
        lines.append(f"# config_sha256: {plan.config_sha256}, "
                     f"text_sha256: {plan.text_sha256}".encode())
    elif plan.absolute_tasks:  # a duplicate only of the same text (timestamps, environment)
        lines.append(f"# text_sha256: {plan.text_sha256}".encode())
    return b"\n".join(lines) + b"\n" + plan.body


def _write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write each file whole or not at all, never over an existing file, durably before it
    appears under its name."""
    try:
        atomic_write_all(files, exclusive=True)
    except FileExistsError as exc:
        raise WorkspaceError(f"{exc.filename2 or exc.filename} appeared while submitting; run "
                             "submit again (what was written is skipped as a duplicate)"
                             ) from None


def submit(base: str | os.PathLike, overrides: Sequence[str] | Mapping[str, Any] | None = None,
           sweep: Sequence[str] | Mapping[str, Any] | None = None, *, ready: bool = False,
           workspace: str | os.PathLike | Workspace | None = None, dry_run: bool = False,
           name_keys: Sequence[str] | None = None, name: str | None = None,
           progress: Progress | None = None) -> Submitted:
    """Write one config per point of ``base`` + ``overrides`` x ``sweep`` into ConfigSources.

    ``overrides``: ``["lr=0.1", "+new=1"]`` or ``{"lr": 0.1}``; ``sweep``: ``{"seed": [1, 2]}``
    or ``["seed=1,2", "lr=range(1,4)"]``. Names are ``<stem>-<key><value>...`` over the swept
    keys, or over ``name_keys``, or the template ``name`` (``"sweep-{lr}-{seed}"``). Points
    identical to an experiment of the workspace are skipped. ``ready=True`` readies exactly
    the files written. Returns the names written; user mistakes raise
    ``orchestration.exceptions.OrchestrationError`` before anything is written.
    ``progress(what, done, total)`` is told how far it got (a progress bar).
    """
    report = progress or (lambda what, done, total: None)
    ws = workspace if isinstance(workspace, Workspace) else Workspace.from_setting(workspace)
    base_path, cwd = Path(base).expanduser(), Path.cwd()
    if not base_path.is_file():
        raise UsageError(f"{base}: no such config file")
    if isinstance(name_keys, str):
        name_keys = [k.strip() for k in name_keys.split(",") if k.strip()]
    planner = Planner(base_path, sweeps.parse_axes(overrides, sweep), cwd,
                       {"keys": name_keys, "template": name})
    planned = planner.points()
    points, fresh = [], []
    with nullcontext() if dry_run else ready_lock(ws), parse_once(), our_resolvers():
        index = WorkspaceIndex.scan(ws, cwd)
        for i, plan in enumerate(planned):
            report("checking points", i, len(planned))
            if (twin := index.by_text.get(plan.text_sha256)) is None:
                plan.config_sha256 = snapshot_hash(planner.resolve(plan), cwd)
                found = index.same_config(plan.config_sha256)
                twin = found and (*found, plan.config_sha256)
            if twin:
                points.append(Point(plan.readable, plan.label, twin[2],
                                    duplicate_of=twin[0], duplicate_state=twin[1]))
                continue
            planner.claim_output(plan)
            wanted = unique_name(plan.readable, base_path.stem, plan.config_sha256,
                                 index.names)
            index.add(wanted, ExperimentState.NEW, plan.text_sha256 if plan.absolute_tasks
                      else None, plan.config_sha256)
            points.append(Point(wanted, plan.label, plan.config_sha256,
                                renamed=wanted != plan.readable))
            fresh.append((ws.folder(ExperimentState.NEW) / f"{wanted}.yaml", plan))
        if not dry_run:
            report("writing", len(planned), len(planned))
            _write_all([(path, _text(plan, base_path)) for path, plan in fresh])
    written = [path for path, _ in fresh] if not dry_run else []
    outcomes = (ready_files(ws, written, base=cwd, whole=True, progress=progress)
                if ready and written else [])
    return Submitted(points, outcomes, dry_run)
