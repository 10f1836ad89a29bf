"""job-orchestration 0.0.7's hyperparameter special tasks, as a search.

0.0.7 ran a config whose task is ``StartHyperparameterOptimization`` by writing one trial
config (tasks ``HyperparameterTrial`` + ``HyperparameterEvaluate``) into ConfigSources; each
trial ran ``testMethod`` with the next grid point, appended its result to
``resultsFilepath`` and wrote the next trial config. Its bugs are not copied: trial ids came
from ``int(time.time())`` (two in one second collided), generated configs were left behind in
ConfigSources, and one failed trial ended the chain.

Here such a config is a search spec (``to_search``): ``ready`` recognises it
(``start_at_ready``) and starts a grid search whose trials run ``testMethod``, all queued at
once; the workers tell each result, and ``search.results_file`` keeps 0.0.7's results file.

======================================  =================================================
0.0.7 (top level or on the start task)  search
======================================  =================================================
``optimisationMethod: grid``            ``sampler: grid`` (0.0.7 knew no other)
``params: [{name, type: float,          ``params: {name: {type: float, low, high,
min, max}]`` + ``gridLineCount``        n: gridLineCount}}``
``params: [{name, type: list, vals}]``  ``params: {name: {type: categorical, choices}}``
``testMethod``                          the trial's one task, ``{id: trial, method: ...}``
``numberTrials`` (optional)             ``trials`` (default: every grid point)
``resultsFilepath`` (optional)          ``results_file``
``baseOutputDir``                       ``outputDir`` (trial 3 in ``<baseOutputDir>/t0003``)
(0.0.7 logged the maximum)              ``objective: trial``, ``direction: maximize``
======================================  =================================================
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config.loader import parse_yaml
from ..config.schema import TASK_KEYS
from ..exceptions import ConfigError, OrchestrationError
from ..states import ExperimentState
from .spec import MAX_GRID, MAX_PARALLEL, MAX_TRIALS, PARAM_NAME, RESERVED, finite_number

START = "StartHyperparameterOptimization"
GENERATED = ("HyperparameterTrial", "HyperparameterEvaluate")  # 0.0.7's trial configs
SEARCH_KEYS = ("optimisationMethod", "gridLineCount", "params", "testMethod", "numberTrials",
               "resultsFilepath", "baseOutputDir")
TRIAL_TASK = "trial"
_MARK = b"Hyperparameter"  # in every config that names a special task: a cheap first look


def special_methods(data: dict[str, Any]) -> list[str]:
    """The 0.0.7 special task methods ``data``'s tasks name."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return []
    return [t["method"] for t in tasks
            if isinstance(t, dict) and t.get("method") in (START, *GENERATED)]


def to_search(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The search spec of a 0.0.7 hyperparameter config: its keys (merged with the start
    task's own, as 0.0.7 merged them) without the search keys, ``tasks`` running
    ``testMethod``, and a ``search:`` block. Raises ConfigError naming 0.0.7's keys."""
    tasks = data["tasks"]
    methods = special_methods(data)
    if any(m in GENERATED for m in methods):
        raise ConfigError(path, [
            f"tasks: {' and '.join(sorted(set(methods) & set(GENERATED)))} belong to a trial "
            "config that job-orchestration 0.0.7 wrote for its grid search "
            "(hyperparameter_<time>.yaml); it is not needed any more: put the config that "
            f"started the search (the one with method {START}) into ConfigSources instead, "
            "and delete this one"])
    others = [str(t.get("id")) for t in tasks if not (isinstance(t, dict)
                                                      and t.get("method") == START)]
    if others or len(tasks) != 1:
        raise ConfigError(path, [
            f"tasks: a config with method {START} becomes a search whose trials run "
            f"testMethod; its other tasks ({', '.join(others) or 'a second ' + START}) would "
            "not run: move them into a config of their own, or into testMethod"])
    options = {k: v for k, v in tasks[0].items() if k in TASK_KEYS and k not in
               ("id", "method", "requires")}  # timeout, retries...: for each trial's task
    merged = {**{k: v for k, v in data.items() if k != "tasks"},
              **{k: v for k, v in tasks[0].items() if k not in TASK_KEYS}}
    problems: list[str] = []
    method = merged.get("optimisationMethod")
    if method != "grid":
        problems.append(f"optimisationMethod: {method!r} is not valid; 0.0.7 knew only grid "
                        "(for TPE, random and others write a search: block, see \"Adaptive "
                        "search\" in the README)")
    test = merged.get("testMethod")
    if not isinstance(test, str) or not test:
        problems.append(f"testMethod: {test!r} is not valid; name the TaskBase subclass in "
                        "Tasks.py that each trial runs (its returned number is the result)")
    params = _params(merged, problems)
    size = math.prod(_count(p) for p in params.values()) if params else 0
    trials = merged.get("numberTrials")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        problems.append(f"numberTrials: {trials!r} is not valid; expected a whole number >= 1 "
                        "(or leave it out: every grid point once)")
    wanted = trials if isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1 \
        else size
    if min(wanted, size) > MAX_TRIALS:  # said in 0.0.7's keys, not as our search.trials
        problems.append(f"the grid has {size:,} points and a search runs at most "
                        f"{MAX_TRIALS:,} trials: set numberTrials (at most {MAX_TRIALS:,}), "
                        "or lower gridLineCount or list fewer vals")
    results = merged.get("resultsFilepath")
    if results is not None and (not isinstance(results, str) or not results):
        problems.append(f"resultsFilepath: {results!r} is not valid; expected a file path")
    if problems:
        raise ConfigError(path, problems)
    budget = min(trials or size, size)
    base = {k: v for k, v in merged.items() if k not in SEARCH_KEYS}
    base["outputDir"] = merged.get("baseOutputDir") or merged.get("outputDir")
    base["tasks"] = [{"id": TRIAL_TASK, "method": test, **options}]
    base["search"] = {"objective": TRIAL_TASK, "direction": "maximize", "sampler": "grid",
                      "trials": budget, "parallel": min(budget, MAX_PARALLEL), "params": params,
                      **({"results_file": results} if results else {})}
    return base


def _params(merged: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    """0.0.7's ``params`` list (with ``gridLineCount``) as a search's ``params`` mapping."""
    given, lines = merged.get("params"), merged.get("gridLineCount")
    if not isinstance(given, list) or not given:
        problems.append(f"params: {given!r} is not valid; expected a list such as [{{name: lr, "
                        "type: float, min: 0.001, max: 0.1}, {name: opt, type: list, vals: "
                        "[adam, sgd]}]")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, param in enumerate(given):
        where = f"params[{i}]"
        name = param.get("name") if isinstance(param, dict) else None
        if not isinstance(name, str) or not PARAM_NAME.fullmatch(name) or name in RESERVED:
            problems.append(f"{where}.name: {name!r} is not valid; name the config key the "
                            "trial's task reads (letters, digits, _ and -), not one of "
                            f"{', '.join(RESERVED)}")
        elif name in out:
            problems.append(f"{where}.name: {name!r} is searched twice; list it once")
        elif param.get("type") == "float":
            low, high = param.get("min"), param.get("max")
            if not all(finite_number(v) for v in (low, high)):
                problems.append(f"{where}: min {low!r} and max {high!r} must both be numbers")
            elif low == high:
                out[name] = {"type": "categorical", "choices": [low]}
            elif not isinstance(lines, int) or isinstance(lines, bool) or not (
                    2 <= lines <= MAX_GRID):
                problems.append(f"gridLineCount: {lines!r} is not valid; a float parameter "
                                f"({name}) needs a whole number of grid points from 2 to "
                                f"{MAX_GRID}")
            else:
                out[name] = {"type": "float", "low": min(low, high), "high": max(low, high),
                             "n": lines}
        elif param.get("type") == "list":
            vals = param.get("vals")
            if not isinstance(vals, list) or not vals:
                problems.append(f"{where}.vals: {vals!r} is not valid; expected a non-empty "
                                "list of values")
            else:
                out[name] = {"type": "categorical", "choices": _unique(vals)}
        else:
            problems.append(f"{where}.type: {param.get('type')!r} is not valid; expected float "
                            "(with min and max) or list (with vals)")
    return out


def _count(param: dict[str, Any]) -> int:
    return param["n"] if param["type"] == "float" else len(param["choices"])


def _unique(values: list[Any]) -> list[Any]:
    """0.0.7 ran a value listed twice twice; a grid point runs once."""
    seen: list[Any] = []
    for value in values:
        if not any(value == s and type(value) is type(s) for s in seen):
            seen.append(value)
    return seen


def start_at_ready(readier: Any, path: Path, source: bytes) -> Any:
    """``ready`` of a 0.0.7 hyperparameter config: start its search, named after the file,
    and hand back ``ready``'s Outcome for it, whose ``follow`` are the trial configs written
    into ConfigSources (``ready`` judges them in the same call). The config itself moves into
    the search's folder as ``spec.yaml``. None when the file is not such a config.

    ``ready`` holds its lock here, so the search is started with ``ready=False`` (queueing
    would take that lock again) and the trials are queued by this ``ready`` instead."""
    from ..ready import Outcome
    from .store import SearchFolder

    if _MARK not in source:
        return None
    try:
        if not special_methods(parse_yaml(path, source)):
            return None
    except ConfigError:
        return None  # ready's own checks say what is wrong with it
    ws, name = readier.ws, path.stem
    folder = SearchFolder(ws, name)
    if folder.exists() and (folder.path / "spec.yaml").read_bytes() == source:
        path.unlink()  # an earlier ready started it and was stopped before this step
        return Outcome(name, True, f"{name}: search {name} was started from this config "
                                   f"already; its config is {folder.path / 'spec.yaml'}",
                       search=True)
    try:
        from .start import search  # imports Optuna: a clear error when it is missing

        started = search(path, name=name, ready=False, workspace=ws, source=source)
    except OrchestrationError as exc:
        message = str(exc) if isinstance(exc, ConfigError) else f"{path}: {exc}"
        return readier.reject(path, message)
    path.unlink()
    spec = started.spec
    trials = ws.folder(ExperimentState.NEW)
    return Outcome(name, True, (
        f"{name}: a job-orchestration 0.0.7 hyperparameter config: started search {name} "
        f"(grid, {started.budget} trials, best result is the largest), trials {started[0]} to "
        f"{started[-1]}; its config is now {folder.path / 'spec.yaml'}"
        + (f"; results file {folder.meta()['results_file']}" if spec.results_file else "")
        + f". See `job-orchestration search status {name}`"),
        follow=[trials / f"{trial}.yaml" for trial in started], search=True)
