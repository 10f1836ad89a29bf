"""The typed shape of a config, and the checks that need nothing but the data.

Every problem is collected (not just the first) and names the dotted key, the value found
and what would be valid, so one round of edits fixes a config. Fields not named here pass
through to the tasks untouched.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
METHOD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TaskSpec:
    """One step of an experiment as the config declares it."""

    id: str
    method: str
    requires: tuple[str, ...]
    timeout: float | None = None
    retries: int = 0
    resources: dict[str, int] = field(default_factory=dict)
    entry: dict[str, Any] = field(default_factory=dict)  # the task's own mapping, as written


@dataclass(frozen=True)
class ExperimentSpec:
    """A resolved, checked config: what runs."""

    github_repository: str
    path_to_tasks: str
    output_dir: str
    tasks: tuple[TaskSpec, ...]
    require_clean_git: bool
    data: dict[str, Any]  # the whole resolved config

    def task(self, task_id: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.id == task_id:
                return spec
        raise KeyError(task_id)

    def task_config(self, spec: TaskSpec) -> dict[str, Any]:
        """What ``Method(config)`` receives: top-level fields with the task's entry over them."""
        merged = {k: v for k, v in self.data.items() if k != "tasks"}
        merged.update(spec.entry)
        return merged

    def sinks(self) -> list[TaskSpec]:
        """Tasks no other task requires: together they pull in the whole DAG."""
        required = {r for t in self.tasks for r in t.requires}
        return [t for t in self.tasks if t.id not in required]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_str(data: dict, key: str, problems: list[str], what: str) -> None:
    value = data.get(key)
    if key not in data or value is None:
        problems.append(f"{key}: missing; required: {what}")
    elif not isinstance(value, str) or not value.strip():
        problems.append(f"{key}: {_show(value)} is not valid; expected {what}")


def _check_task(i: int, entry: Any, problems: list[str]) -> None:
    where = f"tasks[{i}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: {_show(entry)} is not a mapping; expected "
                        "{id: <name>, method: <TaskBase subclass>}")
        return
    tid = entry.get("id")
    if tid is None:
        problems.append(f"{where}.id: missing; every task needs a unique id")
    elif not isinstance(tid, str) or not ID_PATTERN.match(tid) or tid in (".", ".."):
        length = f" ({len(tid)} characters)" if isinstance(tid, str) and len(tid) > 100 else ""
        problems.append(f"{where}.id: {_show(tid)}{length} is not valid; use 1-100 letters, "
                        "digits, '-', '_' or '.' (not '.' or '..')")
    method = entry.get("method")
    if method is None:
        problems.append(f"{where}.method: missing; name a TaskBase subclass in Tasks.py")
    elif not isinstance(method, str) or not METHOD_PATTERN.match(method):
        problems.append(f"{where}.method: {_show(method)} is not valid; expected a class "
                        "name such as Train")
    req = entry.get("requires")
    if req is not None and not (isinstance(req, list) and all(isinstance(r, str) for r in req)):
        problems.append(f"{where}.requires: {_show(req)} is not valid; expected a list of "
                        "task ids, e.g. [prepare], or [] for none")
    timeout = entry.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < math.inf):
        problems.append(f"{where}.timeout: {_show(timeout)} is not valid; expected a number of "
                        "seconds > 0")
    retries = entry.get("retries")
    if retries is not None and (not _is_int(retries) or not 0 <= retries <= 100):
        problems.append(f"{where}.retries: {_show(retries)} is not valid; expected a whole "
                        "number from 0 to 100")
    res = entry.get("resources")
    if res is not None and not (isinstance(res, dict) and all(
            isinstance(k, str) and _is_int(v) and v >= 0 for k, v in res.items())):
        problems.append(f"{where}.resources: {_show(res)} is not valid; expected a mapping "
                        "of resource name to a whole number, e.g. {gpu: 1}")


def _check_graph(tasks: list[dict], problems: list[str]) -> None:
    ids = [t.get("id") for t in tasks]
    seen: set[str] = set()
    for i, tid in enumerate(ids):
        if tid in seen:
            problems.append(f"tasks[{i}].id: {tid!r} is used twice; task ids must be unique")
        seen.add(tid)
    for i, t in enumerate(tasks):
        for r in t.get("requires") or []:
            if r not in seen:
                problems.append(f"tasks[{i}].requires: {r!r} is not a task id of this config; "
                                f"known ids: {', '.join(map(str, ids))}")
            elif r == t.get("id") and ids.count(r) == 1:  # else "used twice" says it all
                problems.append(f"tasks[{i}].requires: task {r!r} requires itself")
    if not problems:
        cycle = _find_cycle({t["id"]: t["requires"] for t in tasks})
        if cycle:
            problems.append(f"tasks: requires form a cycle {' -> '.join(cycle)}; a task may "
                            "only require tasks that do not (indirectly) require it")


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def check(data: dict) -> tuple[ExperimentSpec | None, list[str]]:
    """Check resolved data against the schema; the spec is None when there are problems."""
    problems: list[str] = []
    _check_str(data, "githubRepository", problems, "the URL of the code's repository")
    _check_str(data, "pathToTasks", problems, "the folder holding Tasks.py")
    _check_str(data, "outputDir", problems, "a relative folder under Output/, e.g. sweep1/lr-0.1")
    clean = data.get("requireCleanGit", False)
    if not isinstance(clean, bool):
        problems.append(f"requireCleanGit: {_show(clean)} is not valid; expected true or false")
    tasks = data.get("tasks")
    if tasks is None:
        problems.append("tasks: missing; required: a list of {id, method} mappings")
    elif not isinstance(tasks, list) or not tasks:
        problems.append(f"tasks: {_show(tasks)} is not valid; expected a non-empty list of "
                        "{id, method} mappings")
    else:
        for i, entry in enumerate(tasks):
            _check_task(i, entry, problems)
        if not problems:
            normalised = [dict(t, requires=_requires(tasks, i)) for i, t in enumerate(tasks)]
            _check_graph(normalised, problems)
    if problems:
        return None, problems
    specs = tuple(
        TaskSpec(id=t["id"], method=t["method"], requires=tuple(_requires(tasks, i)),
                 timeout=t.get("timeout"), retries=t.get("retries") or 0,
                 resources=dict(t.get("resources") or {}), entry=dict(t))
        for i, t in enumerate(tasks))
    return ExperimentSpec(github_repository=data["githubRepository"],
                          path_to_tasks=data["pathToTasks"], output_dir=data["outputDir"],
                          tasks=specs, require_clean_git=clean, data=data), []


def _requires(tasks: list[dict], i: int) -> list[str]:
    """Declared ``requires``, else the previous task (the original package ran a chain)."""
    req = tasks[i].get("requires")
    if req is not None:
        return list(req)
    return [tasks[i - 1]["id"]] if i > 0 else []


def spec_from_snapshot(data: dict) -> ExperimentSpec:
    """Rebuild the spec of a snapshot that was checked at ``ready``."""
    spec, problems = check(data)
    if spec is None:
        raise ValueError("; ".join(problems))
    return spec
