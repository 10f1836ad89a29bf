"""The typed shape of a config, and the checks that need nothing but the data.

Every problem is collected (not just the first) and names the dotted key, the value found
and what would be valid, so one round of edits fixes a config. Fields not named here pass
through to the tasks untouched, except near misses of ours (``timout``): a typo there would
silently drop a limit, so it is an error that names the key meant.
"""
from __future__ import annotations

import difflib
import functools
import graphlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..failures import USER_CAUSES, FailureCause

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
METHOD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SECONDS = 366 * 24 * 3600.0  # a year: longer is a typo (and overflows timers)
MAX_RESOURCE = 1_000_000
REQUIRED = ("githubRepository", "pathToTasks", "outputDir", "tasks")
TOP_LEVEL = (*REQUIRED, "requireCleanGit", "notify", "overwriteOutputFine",
             "UNSAFE_ignoreDirtyCheck")
TASK_KEYS = ("id", "method", "requires", "timeout", "retries", "resources", "retry_on",
             "retry_delay", "stall_after", "stall_action")
STALL_ACTIONS = ("warn", "kill")
NEAR_MISS = 0.8  # difflib ratio from which a key of the user's is taken for a typo of ours


@dataclass(frozen=True)
class TaskSpec:
    """One step of an experiment as the config declares it."""

    id: str
    method: str
    requires: tuple[str, ...]
    timeout: float | None = None
    retries: int = 0
    retry_on: tuple[FailureCause, ...] = USER_CAUSES  # which causes use up retries
    retry_delay: float = 0.0
    stall_after: float | None = None
    stall_action: str = "warn"
    resources: dict[str, int] = field(default_factory=dict)
    entry: dict[str, Any] = field(default_factory=dict)  # the task's own mapping, as written

    @property
    def gpus(self) -> int:
        return int(self.resources.get("gpu", 0))


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
        """The top-level fields with the task's own entry merged over them."""
        merged = {k: v for k, v in self.data.items() if k != "tasks"}
        merged.update(spec.entry)
        return merged

    def sinks(self) -> list[TaskSpec]:
        """Tasks no other task requires: together they pull in the whole DAG."""
        required = {r for t in self.tasks for r in t.requires}
        return [t for t in self.tasks if t.id not in required]

    def in_order(self) -> list[TaskSpec]:
        """Every task after the tasks it requires (the graph was checked acyclic)."""
        by_id = {t.id: t for t in self.tasks}
        order = graphlib.TopologicalSorter({t.id: t.requires for t in self.tasks})
        return [by_id[tid] for tid in order.static_order()]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and 0 < value <= MAX_SECONDS)


def near_miss(key: str, known: Iterable[str]) -> str | None:
    """The key of ours ``key`` most likely means (a typo), or None."""
    return _near_miss(key, tuple(known))


@functools.lru_cache(maxsize=4096)  # a sweep checks the same keys at every point
def _near_miss(key: str, known: tuple[str, ...]) -> str | None:
    if key in known:
        return None
    folded = {k.lower(): k for k in known}
    if key.lower() in folded:
        return folded[key.lower()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=NEAR_MISS)
    return close[0] if close else None


def _check_str(data: dict, key: str, problems: list[str], what: str) -> None:
    value = data.get(key)
    if key not in data or value is None:
        typo = next((k for k in data if near_miss(k, [key]) == key), None)
        hint = f"; did you mean {key} instead of {typo}?" if typo else ""
        problems.append(f"{key}: missing; required: {what}{hint}")
    elif not isinstance(value, str) or not value.strip():
        problems.append(f"{key}: {_show(value)} is not valid; expected {what}")


def _check_seconds(where: str, entry: dict, key: str, problems: list[str]) -> None:
    value = entry.get(key)
    if value is not None and not _is_seconds(value):
        problems.append(f"{where}.{key}: {_show(value)} is not valid; expected a number of "
                        f"seconds > 0 and at most {MAX_SECONDS:.0f} (a year)")


def _check_task(i: int, entry: Any, problems: list[str]) -> None:
    where = f"tasks[{i}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: {_show(entry)} is not a mapping; expected "
                        "{id: <name>, method: <TaskBase subclass>}")
        return
    for key in entry:
        meant = near_miss(key, TASK_KEYS) if isinstance(key, str) else None
        if meant is not None and meant not in entry:
            problems.append(f"{where}.{key}: unknown setting; did you mean {meant}? (other "
                            "keys of a task are passed to it as config, so a typo of ours "
                            "would be silently ignored)")
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
    for key in ("timeout", "retry_delay", "stall_after"):
        _check_seconds(where, entry, key, problems)
    retries = entry.get("retries")
    if retries is not None and (not _is_int(retries) or not 0 <= retries <= 100):
        problems.append(f"{where}.retries: {_show(retries)} is not valid; expected a whole "
                        "number from 0 to 100")
    causes = entry.get("retry_on")
    names = [c.value for c in FailureCause]
    if causes is not None and not (isinstance(causes, list) and all(c in names for c in causes)):
        problems.append(f"{where}.retry_on: {_show(causes)} is not valid; expected a list of "
                        f"causes from: {', '.join(names)}")
    action = entry.get("stall_action")
    if action is not None and action not in STALL_ACTIONS:
        problems.append(f"{where}.stall_action: {_show(action)} is not valid; expected "
                        f"{' or '.join(STALL_ACTIONS)} (kill needs stall_after)")
    elif action is not None and entry.get("stall_after") is None:
        problems.append(f"{where}.stall_action: {action} does nothing without stall_after; "
                        "add stall_after: <seconds without progress> (e.g. 600)")
    res = entry.get("resources")
    if res is not None and not (isinstance(res, dict) and all(
            isinstance(k, str) and _is_int(v) and 0 <= v <= MAX_RESOURCE
            for k, v in res.items())):
        problems.append(f"{where}.resources: {_show(res)} is not valid; expected a mapping "
                        f"of resource name to a whole number (0-{MAX_RESOURCE}), e.g. {{gpu: 1}}")


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
                known = difflib.get_close_matches(r, [str(x) for x in ids], n=1)
                hint = f"did you mean {known[0]!r}? " if known else ""
                problems.append(f"tasks[{i}].requires: {r!r} is not a task id of this config; "
                                f"{hint}known ids: {', '.join(map(str, ids[:20]))}"
                                + (", ..." if len(ids) > 20 else ""))
            elif r == t.get("id") and ids.count(r) == 1:  # else "used twice" says it all
                problems.append(f"tasks[{i}].requires: task {r!r} requires itself")
    if not problems:
        try:
            graphlib.TopologicalSorter({t["id"]: t["requires"] for t in tasks}).prepare()
        except graphlib.CycleError as exc:
            cycle = list(reversed(exc.args[1]))
            problems.append(f"tasks: requires form a cycle {' -> '.join(cycle)}; a task may "
                            "only require tasks that do not (indirectly) require it")


def _check_top_level(data: dict, problems: list[str]) -> None:
    for key in data:
        meant = near_miss(key, TOP_LEVEL) if isinstance(key, str) else None
        if meant is not None and meant not in data and meant not in REQUIRED:
            problems.append(f"{key}: unknown setting; did you mean {meant}? (other top-level "
                            "keys are passed to the tasks, so a typo of ours would be "
                            "silently ignored)")
    for key in ("requireCleanGit", "overwriteOutputFine", "UNSAFE_ignoreDirtyCheck"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"{key}: {_show(value)} is not valid; expected true or false")
    notify = data.get("notify")
    if notify is not None and not (
            isinstance(notify, list) and notify and all(isinstance(a, str) for a in notify)):
        problems.append(f"notify: {_show(notify)} is not valid; expected a command as a list "
                        "of strings, e.g. [notify-send, done] (it is run without a shell)")


def check(data: dict) -> tuple[ExperimentSpec | None, list[str]]:
    """Check resolved data against the schema; the spec is None when there are problems."""
    problems: list[str] = []
    _check_str(data, "githubRepository", problems, "the URL of the code's repository")
    _check_str(data, "pathToTasks", problems, "the folder holding Tasks.py")
    _check_str(data, "outputDir", problems, "a relative folder under Output/, e.g. sweep1/lr-0.1")
    _check_top_level(data, problems)
    tasks = data.get("tasks")
    if tasks is None:
        if "tasks" not in data:
            typo = next((k for k in data if near_miss(k, ["tasks"]) == "tasks"), None)
            hint = f"; did you mean tasks instead of {typo}?" if typo else ""
        else:
            hint = ""
        problems.append(f"tasks: missing; required: a list of {{id, method}} mappings{hint}")
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
    return ExperimentSpec(github_repository=data["githubRepository"],
                          path_to_tasks=data["pathToTasks"], output_dir=data["outputDir"],
                          tasks=tuple(_task_spec(tasks, i) for i in range(len(tasks))),
                          require_clean_git=data.get("requireCleanGit", False), data=data), []


def _task_spec(tasks: list[dict], i: int) -> TaskSpec:
    t = tasks[i]
    causes = t.get("retry_on")
    return TaskSpec(id=t["id"], method=t["method"], requires=tuple(_requires(tasks, i)),
                    timeout=t.get("timeout"), retries=t.get("retries") or 0,
                    retry_on=USER_CAUSES if causes is None else tuple(
                        FailureCause(c) for c in causes),
                    retry_delay=float(t.get("retry_delay") or 0.0),
                    stall_after=t.get("stall_after"), stall_action=t.get("stall_action", "warn"),
                    resources=dict(t.get("resources") or {}), entry=dict(t))


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
