"""``submit``: write one config per point of a sweep into ConfigSources, skipping duplicates.

The written files keep the base config's ``${...}`` interpolations with the point's values
set, because ``ready`` is where a config is resolved (timestamps, allowed environment
variables) and the file should still read like the one the user wrote; only a relative
``pathToTasks`` is written absolute (taken from where ``submit`` runs, as ``ready`` would),
so the files ready from anywhere. A comment header names the base and the point.

A point is a duplicate when its resolved config hashes like the ``config_sha256`` ``ready``
would record for it (``pathToTasks`` made absolute first): compared against every experiment
of the workspace in any state, and against the earlier points of the same call. The index is
built once per call: readied experiments give their recorded hash from ``run.json``; configs
not yet readied are resolved, unless they carry the hash ``submit`` wrote into their header
and are unchanged since (see ``_cached_hash``), which keeps resubmitting 1000 points fast.
"""
from __future__ import annotations

import hashlib
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .config import sweep as sweeps
from .config.loader import load_config, parse_yaml, resolve, to_omegaconf
from .config.schema import check
from .config.validate import tasks_folder
from .exceptions import ConfigError, UsageError, WorkspaceError
from .fsutil import fsync_dir, temp_path
from .ready import Outcome, ready_files, ready_lock
from .records import run_record
from .states import ExperimentState
from .workspace import Workspace

HEADER = b"# written by `job-orchestration submit`"
HASH_LINE = re.compile(rb"^# config_sha256: ([0-9a-f]{64}), text_sha256: ([0-9a-f]{64})\n",
                       re.M)
RESOLVER_CALL = re.compile(r"\$\{\s*[\w.]+\s*:")  # ${now:...}, ${oc.env:...}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Point:
    """One point of a submission: written (or, in a dry run, to be written) or skipped."""

    name: str            # for a skipped point: the name it would have had
    label: str           # "lr=0.1 seed=2": what makes this point
    config_sha256: str
    duplicate_of: str | None = None    # the experiment with the identical resolved config
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


@dataclass
class _Planned:
    label: str
    readable: str
    digest: str
    data: dict[str, Any]
    absolute_tasks: bool  # pathToTasks resolves to an absolute path: no cwd in its hash


def snapshot_hash(resolved: dict, base: Path) -> str:
    """The ``config_sha256`` that ``ready`` run in ``base`` records for this resolved config."""
    if isinstance(resolved.get("pathToTasks"), str):
        resolved = {**resolved, "pathToTasks": str(tasks_folder(resolved["pathToTasks"], base))}
    return run_record.config_hash(resolved)


class WorkspaceIndex:
    """Every experiment of a workspace by config hash, and every name in use."""

    def __init__(self) -> None:
        self.by_hash: dict[str, tuple[str, ExperimentState]] = {}
        self.names: set[str] = set()

    def add(self, name: str, digest: str | None, state: ExperimentState) -> None:
        self.names.add(name)
        if digest:
            self.by_hash.setdefault(digest, (name, state))

    @classmethod
    def scan(cls, ws: Workspace, base: Path) -> "WorkspaceIndex":
        index = cls()
        registered = ws.registered()
        for state in ExperimentState:
            for path in ws.config_files(state):
                recorded = (_recorded_hash(registered[path.stem])
                            if state is not ExperimentState.NEW and path.stem in registered else None)
                index.add(path.stem, recorded or _file_hash(path, base), state)
        index.names.update(registered)
        return index


def _recorded_hash(output_dir: Path) -> str | None:
    try:
        return run_record.load(output_dir).get("config_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _cached_hash(text: bytes) -> str | None:
    """The hash in a header ``submit`` wrote, if the text below it is unchanged since."""
    match = HASH_LINE.search(text, 0, 4096) if text.startswith(HEADER) else None
    if match and hashlib.sha256(text[match.end():]).hexdigest() == match[2].decode():
        return match[1].decode()
    return None


def _file_hash(path: Path, base: Path) -> str | None:
    """The hash of a config not readied yet; None when it cannot be loaded (``ready`` would
    reject it, so no valid point equals it)."""
    try:
        source = path.read_bytes()
        return _cached_hash(source) or snapshot_hash(load_config(path, source), base)
    except (ConfigError, OSError):
        return None


def _plan(base: Path, axes: list[sweeps.Axis], cwd: Path) -> list[_Planned]:
    """Every point's data, name and hash; raises before anything is written.

    One OmegaConf object is reused with each point's values set on it: creating one per
    point costs more than resolving it.
    """
    data = parse_yaml(base)
    where = str(base)
    forced = [replace(axis, add="++") for axis in axes]  # cfg has every key after point 1
    key_labels = sweeps.labels(axes, data)
    planned, cfg = [], None
    for values in sweeps.grid(axes):
        label = sweeps.describe(axes, values)
        point = sweeps.apply(data, axes, values, where)
        tasks = point.get("pathToTasks")
        if isinstance(tasks, str) and "${" not in tasks:
            point["pathToTasks"] = str(tasks_folder(tasks, cwd))
        try:
            if cfg is None:
                cfg = to_omegaconf(base, point)
            else:
                for axis, value in zip(forced, values):
                    sweeps.assign(cfg, axis, value, where)
            resolved = resolve(base, cfg)
            spec, problems = check(resolved)
            if spec is None:
                raise ConfigError(base, problems)
        except ConfigError as exc:
            raise ConfigError(f"{base} with {label}" if axes else base, exc.problems) from None
        planned.append(_Planned(label, sweeps.readable_name(base.stem, key_labels, values),
                                snapshot_hash(resolved, cwd), point,
                                os.path.isabs(resolved["pathToTasks"])))
    return planned


def _text(plan: _Planned, base: Path) -> bytes:
    body = yaml.dump(plan.data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True).encode()
    lines = [HEADER + f" from {sweeps.show(str(base.absolute()))}".encode(),
             f"# {plan.label or '(no overrides)'}; ${{...}} are resolved at `ready`".encode()]
    if plan.absolute_tasks and not RESOLVER_CALL.search(body.decode()):
        # the hash depends on this text alone (no timestamps, environment or cwd in it)
        lines.append(f"# config_sha256: {plan.digest}, text_sha256: "
                     f"{hashlib.sha256(body).hexdigest()}".encode())
    return b"\n".join(lines) + b"\n" + body


def _create(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all, never over an existing file."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        raise WorkspaceError(f"{path} appeared while submitting; run submit again (what was "
                             "written is skipped as a duplicate)") from None
    finally:
        tmp.unlink(missing_ok=True)


def submit(base: str | os.PathLike, overrides: Sequence[str] | Mapping[str, Any] | None = None,
           sweep: Sequence[str] | Mapping[str, Any] | None = None, *, ready: bool = False,
           workspace: str | os.PathLike | Workspace | None = None,
           dry_run: bool = False) -> Submitted:
    """Write one config per point of ``base`` + ``overrides`` x ``sweep`` into ConfigSources.

    ``overrides``: ``["lr=0.1", "+new=1"]`` or ``{"lr": 0.1}``; ``sweep``: ``{"seed": [1, 2]}``
    or ``["seed=1,2", "lr=range(1,4)"]``. Points identical to an experiment of the workspace
    are skipped. ``ready=True`` readies exactly the files written. Returns the names written;
    user mistakes raise ``orchestration.exceptions.OrchestrationError`` before anything is
    written.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.from_setting(workspace)
    base_path, cwd = Path(base).expanduser(), Path.cwd()
    if not base_path.is_file():
        raise UsageError(f"{base}: no such config file")
    planned = _plan(base_path, sweeps.parse_axes(overrides, sweep), cwd)
    points, written = [], []
    with nullcontext() if dry_run else ready_lock(ws):
        index = WorkspaceIndex.scan(ws, cwd)
        for plan in planned:
            if (found := index.by_hash.get(plan.digest)) is not None:
                points.append(Point(plan.readable, plan.label, plan.digest,
                                    duplicate_of=found[0], duplicate_state=found[1]))
                continue
            name = sweeps.unique_name(plan.readable, base_path.stem, plan.digest, index.names)
            index.add(name, plan.digest, ExperimentState.NEW)
            points.append(Point(name, plan.label, plan.digest, renamed=name != plan.readable))
            if not dry_run:
                path = ws.folder(ExperimentState.NEW) / f"{name}.yaml"
                _create(path, _text(plan, base_path))
                written.append(path)
        if written:
            fsync_dir(ws.folder(ExperimentState.NEW))
    outcomes = ready_files(ws, written, base=cwd, whole=True) if ready and written else []
    return Submitted(points, outcomes, dry_run)
