"""``search start``: check a spec, create the study, write the first ``parallel`` trials.

The spec is a normal config plus a ``search:`` block. Before anything is queued, the first
trial's config goes through every check ``ready`` makes (schema, output folder, git state,
Tasks.py import, each task's ``validate()``); if it fails, the search is removed again and
the error names the spec file. After that, ``start`` exits: the workers do the rest.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ..config.loader import parse_yaml, resolve, to_omegaconf
from ..config.schema import check as check_schema
from ..config.validate import tasks_folder
from ..exceptions import ConfigError, UsageError
from ..fsutil import atomic_write_json, atomic_write
from ..states import ExperimentState
from ..workspace import Workspace
from . import legacy, results_file
from .advance import Advancer, Check
from .spec import SearchSpec, parse_search
from .store import SearchFolder, check_name, searches_root
from .trials import describe, render

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Started(list):
    """The trial experiments written, in order: ``names = search(...)``. Details as
    attributes: ``name`` (the search), ``folder``, ``journal``, ``spec``, ``budget`` and
    ``outcomes`` (what ``ready`` did, with ``ready=True``)."""

    def __init__(self, names: list[str], folder: SearchFolder, spec: SearchSpec,
                 outcomes: list) -> None:
        super().__init__(names)
        self.name, self.folder, self.journal = folder.name, folder.path, folder.journal
        self.spec, self.budget, self.outcomes = spec, spec.budget, outcomes


def _split(path: Path, source: bytes | None
           ) -> tuple[dict[str, Any], SearchSpec, list[str], bool]:
    """The base config (pathToTasks absolute, outputDir resolved), the search block, the
    task ids, and whether the file is a job-orchestration 0.0.7 hyperparameter config."""
    from ..ready import expand_date_time

    data = parse_yaml(path, source)
    from_007 = "search" not in data and bool(legacy.special_methods(data))
    if from_007:
        data = legacy.to_search(path, data)
    if "search" not in data:
        raise ConfigError(path, ["search: missing; a search spec is a config plus a search: "
                                 "block with objective, trials and params (see the README, "
                                 "\"Adaptive search\")"])
    block = data.pop("search")
    tasks = data.get("pathToTasks")
    if isinstance(tasks, str) and "${" not in tasks:
        data["pathToTasks"] = str(tasks_folder(tasks, Path.cwd()))
    resolved = resolve(path, to_omegaconf(path, data))
    checked, problems = check_schema(resolved)
    task_ids = [t.id for t in checked.tasks] if checked is not None else []
    spec, block_problems = parse_search(block, task_ids)
    if checked is None or spec is None:
        raise ConfigError(path, problems + block_problems)
    # once: a ${now:...} or 0.0.7's {date} must not differ per trial
    data["outputDir"] = expand_date_time(resolved["outputDir"])
    return data, spec, task_ids, from_007


def _first_trial_check(ws: Workspace, spec_path: Path) -> Check:
    """Everything ``ready`` checks, on a trial config that is not written anywhere."""
    from ..ready import Readier

    def check(name: str, config: dict, params: dict) -> None:
        readier = Readier(ws, Path.cwd(), whole=True)
        try:
            candidate = readier.candidate(ws.folder(ExperimentState.NEW) / f"{name}.yaml", name,
                                          render(config, []))
            readier.validate([candidate])
            if candidate.problems:
                raise ConfigError(spec_path, candidate.problems)
        except ConfigError as exc:
            raise ConfigError(spec_path, [f"{p} (in the first trial, {describe(params)})"
                                          for p in exc.problems]) from None
    return check


def search(spec: str | os.PathLike, *, name: str | None = None, ready: bool = False,
           workspace: str | os.PathLike | Workspace | None = None,
           source: bytes | None = None) -> Started:
    """Start an adaptive search from ``spec`` (a config with a ``search:`` block): create
    the study in ``Misc/searches/<name>/`` and write its first ``parallel`` trials into
    ConfigSources (``ready=True``: queue them too). Workers ask for the rest as trials end.
    User mistakes raise ``OrchestrationError`` before anything is queued. ``source``: the
    file's bytes when the caller has read them already (``ready``): the search is started
    from exactly what was judged, the file read once."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.from_setting(workspace)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UsageError(f"{spec}: no such spec file")
    base, parsed, task_ids, from_007 = _split(path, source)  # None: parse_yaml reads it, capped
    results = None if parsed.results_file is None else results_file.place(
        ws, base["outputDir"], parsed.results_file,
        "resultsFilepath" if from_007 else "search.results_file", path)
    folder = SearchFolder(ws, check_name(name or path.stem))
    if folder.path.exists():
        raise UsageError(f"a search named {folder.name!r} already exists ({folder.path}); "
                         "choose another --name (see `job-orchestration search status "
                         f"{folder.name}`)")
    from . import study as studies  # Optuna: a clear error when it is not installed

    seed = parsed.seed if parsed.seed is not None else random.SystemRandom().randrange(2 ** 31)
    studies.sampler_for(parsed, seed, 0)  # bad sampler options fail before anything exists
    searches_root(ws).mkdir(exist_ok=True)
    try:
        folder.path.mkdir()
    except FileExistsError:
        raise UsageError(f"a search named {folder.name!r} was just started by someone else; "
                         "choose another --name") from None
    with folder.lock():
        try:
            _write_meta(folder, path, source, base, parsed, task_ids, seed, ready, results)
            advancer = Advancer(folder, studies.create(str(folder.journal), folder.name,
                                                       parsed, seed))
            advancer.ask(ready, _first_trial_check(ws, path))
        except BaseException:
            shutil.rmtree(folder.path, ignore_errors=True)  # nothing was queued
            raise
        advancer.run(ready_new=ready)
    return Started(list(advancer.ledger.trials), folder, parsed, advancer.outcomes)


def _write_meta(folder: SearchFolder, path: Path, source: bytes | None, base: dict,
                spec: SearchSpec, task_ids: list[str], seed: int, ready: bool,
                results: Path | None) -> None:
    atomic_write(folder.path / "spec.yaml", path.read_bytes() if source is None else source)
    atomic_write(folder.base_path, yaml.dump(base, Dumper=_DUMPER, sort_keys=False,
                                                  allow_unicode=True))
    meta = {"name": folder.name, "spec_file": str(path.absolute()), "created": time.time(),
            "search": json.loads(json.dumps(spec.raw, default=str)),
            "task_ids": task_ids, "seed": seed,
            "budget": spec.budget, "parallel": spec.parallel, "ready": ready,
            "results_file": None if results is None else str(results)}
    atomic_write_json(folder.meta_path, meta)  # last: its presence makes the search visible
