"""The ``search:`` block of a search spec: checked into a typed ``SearchSpec``.

Pure data, no Optuna: every problem is collected and names the dotted key, the value and a
fix, like the config schema's. A parameter is one of Optuna's distributions; ``step`` (or,
for floats, ``n`` evenly spaced points, 0.0.7's ``gridLineCount``) gives the finite set of
values the ``grid`` sampler walks.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

DIRECTIONS = ("minimize", "maximize")
# sampler name -> Optuna class, and the packages it needs beyond Optuna itself
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler",
            "cmaes": "CmaEsSampler", "qmc": "QMCSampler", "gp": "GPSampler",
            "nsgaii": "NSGAIISampler", "bruteforce": "BruteForceSampler"}
SAMPLER_NEEDS = {"cmaes": ("cmaes",), "qmc": ("scipy",), "gp": ("torch", "scipy")}
FINITE_SAMPLERS = ("grid", "bruteforce")  # they enumerate values: every parameter must be finite
MAX_TRIALS = 100_000
MAX_PARALLEL = 10_000
MAX_GRID = 1_000_000
KEYS = ("objective", "direction", "trials", "parallel", "sampler", "sampler_options", "seed",
        "params", "results_file")
PARAM_KEYS = {"float": ("type", "low", "high", "log", "step", "n"),
              "int": ("type", "low", "high", "log", "step"),
              "categorical": ("type", "choices")}
RESERVED = ("githubRepository", "pathToTasks", "outputDir", "tasks", "search")
PARAM_NAME = re.compile(r"[A-Za-z0-9_][\w-]*(\.[\w-]+)*")


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: a dotted config key and the distribution of its values."""

    name: str
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    n: int | None = None  # floats only: n evenly spaced grid points from low to high
    choices: tuple[Any, ...] = ()

    def count(self) -> int | None:
        """How many values this parameter takes, or None for a continuous range."""
        if self.type == "categorical":
            return len(self.choices)
        if self.type == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.n is not None:
            return self.n
        if self.step is not None:
            return int((Decimal(str(self.high)) - Decimal(str(self.low)))
                       // Decimal(str(self.step))) + 1
        return None

    def grid_values(self) -> list[Any] | None:
        """The finite values this parameter takes, or None for a continuous range."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.n is not None:
            return _spaced(float(self.low), float(self.high), self.n, self.log)
        if self.step is not None:
            low, step = Decimal(str(self.low)), Decimal(str(self.step))
            return [float(low + i * step) for i in range(self.count() or 0)]
        return None


@dataclass(frozen=True)
class SearchSpec:
    """A checked ``search:`` block."""

    objective: str               # as written: "<task id>" or "<task id>.<key>..."
    objective_task: str
    objective_key: tuple[str, ...]
    direction: str
    trials: int
    parallel: int
    sampler: str
    sampler_options: dict[str, Any]
    seed: int | None
    params: tuple[ParamSpec, ...]
    results_file: str | None = None  # completed trials as YAML (0.0.7's resultsFilepath)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # the block as written

    @property
    def grid_size(self) -> int | None:
        """How many points the grid has (None when some parameter is continuous)."""
        size = 1
        for param in self.params:
            count = param.count()
            if count is None:
                return None
            size *= count
        return size

    @property
    def budget(self) -> int:
        """How many trials the search runs: ``trials``, or fewer when the grid is smaller."""
        size = self.grid_size if self.sampler == "grid" else None
        return self.trials if size is None else min(self.trials, size)


def _spaced(low: float, high: float, n: int, log: bool) -> list[float]:
    """``n`` points from ``low`` to ``high`` (both included), geometric when ``log``; rounded to
    12 significant digits so ``0.1`` is written as 0.1, not 0.10000000000000002."""
    if log:
        a, b = math.log(low), math.log(high)
        points = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
    else:
        points = [low + (high - low) * i / (n - 1) for i in range(n)]
    rounded = [min(high, max(low, float(f"{p:.12g}"))) for p in points]
    return [low, *rounded[1:-1], high]


def finite_number(value: Any) -> bool:
    """A real number (not a bool), finite: what a search bound or step may be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_number(where: str, value: Any, what: str) -> str:
    return f"{where}: {_show(value)} is not valid; expected {what}"


class _Checker:
    """Collects the problems of one block."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def integer(self, block: Mapping, key: str, low: int, high: int, default: int | None,
                where: str) -> int | None:
        value = block.get(key, default)
        if value is None:
            self.problems.append(f"{where}.{key}: missing; give a whole number from {low} to "
                                 f"{high}")
        elif not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.problems.append(f"{where}.{key}: {_show(value)} is not valid; expected a whole "
                                 f"number from {low} to {high}")
            return None
        return value

    def choice(self, block: Mapping, key: str, options: tuple[str, ...] | list[str],
               default: str, where: str) -> str:
        value = block.get(key, default)
        if value not in options:
            self.problems.append(f"{where}.{key}: {_show(value)} is not valid; expected one of "
                                 f"{', '.join(options)}")
        return value

    def unknown(self, block: Mapping, known: tuple[str, ...], where: str) -> None:
        for key in block:
            if key not in known:
                self.problems.append(f"{where}.{key}: unknown key; allowed: {', '.join(known)}")

    def param(self, name: Any, entry: Any, sampler: str) -> ParamSpec | None:
        where = f"search.params.{name}"
        if not isinstance(name, str) or not PARAM_NAME.fullmatch(name):
            self.problems.append(f"{where}: not a valid name; use a dotted config key such as "
                                 "lr or optimizer.lr")
            return None
        if name.split(".")[0] in RESERVED:
            self.problems.append(f"{where}: {name.split('.')[0]} is set by the search itself "
                                 "or names the code; search another key")
            return None
        if not isinstance(entry, Mapping):
            self.problems.append(f"{where}: {_show(entry)} is not a mapping; e.g. {{type: float, "
                                 "low: 0.0, high: 1.0}}")
            return None
        kind = entry.get("type")
        if kind not in PARAM_KEYS:
            self.problems.append(f"{where}.type: {_show(kind)} is not valid; expected float, int "
                                 "or categorical")
            return None
        before = len(self.problems)
        self.unknown(entry, PARAM_KEYS[kind], where)
        spec = (self._categorical(name, entry, where) if kind == "categorical"
                else self._range(name, kind, entry, where))
        if spec is not None and sampler in FINITE_SAMPLERS and spec.count() is None:
            self.problems.append(f"{where}: sampler {sampler} needs a finite set of values; add "
                                 "step (e.g. step: 0.1) or n (e.g. n: 5 points from low to high)")
        return spec if len(self.problems) == before else None

    def _categorical(self, name: str, entry: Mapping, where: str) -> ParamSpec | None:
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            self.problems.append(f"{where}.choices: {_show(choices)} is not valid; expected a "
                                 "non-empty list, e.g. [adam, sgd]")
            return None
        for value in choices:
            if not (value is None or isinstance(value, (str, bool, int, float))):
                self.problems.append(f"{where}.choices: {_show(value)} is not valid; each choice "
                                     "is a string, number, true/false or null")
                return None
        if len({repr(c) for c in choices}) != len(choices):
            self.problems.append(f"{where}.choices: {_show(choices)} lists a value twice; list "
                                 "each once")
            return None
        return ParamSpec(name, "categorical", choices=tuple(choices))

    def _range(self, name: str, kind: str, entry: Mapping, where: str) -> ParamSpec | None:
        is_int = kind == "int"
        what = "a whole number" if is_int else "a number"
        low, high = entry.get("low"), entry.get("high")
        for key, value in (("low", low), ("high", high)):
            if not finite_number(value) or (is_int and not isinstance(value, int)):
                self.problems.append(_bad_number(f"{where}.{key}", value, what))
                return None
        if low > high:
            self.problems.append(f"{where}: low {low!r} is above high {high!r}; swap them")
            return None
        log = entry.get("log", False)
        step, n = entry.get("step"), entry.get("n")
        if not isinstance(log, bool):
            self.problems.append(f"{where}.log: {_show(log)} is not valid; expected true or false")
        elif log and low <= 0:
            self.problems.append(f"{where}.log: a log scale needs low > 0 (low is {low!r})")
        if step is not None:
            if not finite_number(step) or step <= 0 or (is_int and not isinstance(step, int)):
                self.problems.append(_bad_number(f"{where}.step", step, f"{what} > 0"))
            elif log:
                self.problems.append(f"{where}: step and log: true cannot be combined (Optuna "
                                     "steps linearly); drop one")
            elif Decimal(str(high)) - Decimal(str(low)) != 0 and (
                    (Decimal(str(high)) - Decimal(str(low))) % Decimal(str(step))):
                self.problems.append(f"{where}.step: {step!r} does not divide high - low "
                                     f"({high!r} - {low!r}); choose a step that does, or move "
                                     "high onto the last step")
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= MAX_GRID:
                self.problems.append(f"{where}.n: {_show(n)} is not valid; expected a whole "
                                     f"number of grid points from 2 to {MAX_GRID}")
            elif step is not None:
                self.problems.append(f"{where}: give step or n, not both")
            elif low == high:
                self.problems.append(f"{where}.n: low equals high, so there is one point; drop n")
        return ParamSpec(name, kind, low=low, high=high, log=log, step=step, n=n)


def objective_parts(objective: str, task_ids: list[str]) -> tuple[str, tuple[str, ...]] | None:
    """``evaluate.mse`` -> (``evaluate``, (``mse``,)); task ids may contain dots, so the
    longest id that prefixes the objective wins. None when no task id matches."""
    for task_id in sorted(task_ids, key=len, reverse=True):
        if objective == task_id:
            return task_id, ()
        if objective.startswith(task_id + "."):
            return task_id, tuple(objective[len(task_id) + 1:].split("."))
    return None


def parse_search(block: Any, task_ids: list[str]) -> tuple[SearchSpec | None, list[str]]:
    """Check a ``search:`` block; ``task_ids`` are the base config's, for the objective."""
    if not isinstance(block, Mapping):
        return None, [f"search: {_show(block)} is not a mapping; expected objective, trials, "
                      "params, ..."]
    check = _Checker()
    check.unknown(block, KEYS, "search")
    objective = block.get("objective")
    parts = None
    if not isinstance(objective, str) or not objective:
        check.problems.append("search.objective: missing; name the task whose returned value "
                              "is minimised or maximised: <task id> or <task id>.<key>")
    elif (parts := objective_parts(objective, task_ids)) is None and task_ids:
        check.problems.append(f"search.objective: {objective!r} names no task of this config; "
                              f"start it with a task id: {', '.join(task_ids)}")
    direction = check.choice(block, "direction", DIRECTIONS, "minimize", "search")
    trials = check.integer(block, "trials", 1, MAX_TRIALS, None, "search")
    parallel = check.integer(block, "parallel", 1, MAX_PARALLEL, 1, "search")
    sampler = check.choice(block, "sampler", list(SAMPLERS), "tpe", "search")
    options = block.get("sampler_options") or {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        check.problems.append(f"search.sampler_options: {_show(options)} is not valid; expected "
                              "a mapping of Optuna sampler arguments, e.g. {n_startup_trials: 5}")
        options = {}
    seed = block.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        check.problems.append(f"search.seed: {_show(seed)} is not valid; expected a whole "
                              "number >= 0")
    results_file = block.get("results_file")
    if results_file is not None and (not isinstance(results_file, str) or not results_file
                                     or "\0" in results_file):
        check.problems.append(f"search.results_file: {_show(results_file)} is not valid; "
                              "expected a file path, e.g. results.yaml (relative to the "
                              "search's output folder)")
    params = block.get("params")
    specs: list[ParamSpec] = []
    if not isinstance(params, Mapping) or not params:
        check.problems.append(f"search.params: {_show(params)} is not valid; expected a mapping "
                              "of dotted config keys to distributions, e.g. lr: {type: float, "
                              "low: 1.0e-4, high: 1.0, log: true}")
    else:
        specs = [s for name, entry in params.items()
                 if (s := check.param(name, entry, sampler)) is not None]
    if check.problems:
        return None, check.problems
    spec = SearchSpec(objective, parts[0] if parts else "", parts[1] if parts else (), direction,
                      trials, parallel, sampler, dict(options), seed, tuple(specs),
                      results_file, raw=dict(block))
    if sampler == "grid" and (spec.grid_size or 0) > MAX_GRID:
        return None, [f"search.params: the grid has {spec.grid_size} points; at most {MAX_GRID}"]
    return spec, []
