"""``results``: one row per experiment, for comparing a sweep: what was varied, what came out.

A row holds the experiment's name and state, the config fields that *differ across the
selected rows* (dotted keys; fields every row shares say nothing about the sweep) and each
task's returned value. Bookkeeping fields (``BOOKKEEPING``) are never columns: ``outputDir``
differs for every experiment and ``pathToTasks`` for every rerun, which would bury the
fields that matter; ``show`` and ``diff`` print them, and ``all_fields=True`` returns every
field, bookkeeping included. Every key works in ``where`` and ``sort``. Only tasks that
finished and returned something appear in ``results``.

Only ``run.json`` files and folder listings are read, so 10,000 experiments take about a
second.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Any, Iterable, Mapping

from ..config.keys import close_matches, flatten, flatten_config
from ..exceptions import UsageError
from ..states import StepState
from ..workspace import Workspace
from .compare import show_value
from .summary import ViewCache, listed

BOOKKEEPING = ("githubRepository", "pathToTasks", "outputDir", "requireCleanGit")
ROW_KEYS = ("name", "state")
_ABSENT = object()


def results(workspace: str | os.PathLike | Workspace | None = None,
            where: Mapping[str, Any] | None = None, *, sort: str | None = None,
            desc: bool = False, all_fields: bool = False) -> list[dict[str, Any]]:
    """Rows ``{"name", "state", "config": {dotted key: value}, "results": {task id: value}}``
    of the experiments whose config matches every ``where`` item (typed: ``0.1`` != ``"0.1"``).

    ``where`` and ``sort`` keys are dotted config keys (any, bookkeeping too, tasks by id as
    in ``tasks.train.epochs``), ``name``/``state``, and for ``sort`` also a returned value
    (``train.loss``); a key no experiment has is a UsageError naming close matches. ``sort``
    orders numbers as numbers, missing values last (also with ``desc``); by default rows are
    sorted by name. ``all_fields``: ``config`` holds every field of each experiment, not only
    the ones that differ.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.from_setting(workspace)
    where = dict(where or {})
    selected, known, seen = [], set(ROW_KEYS), False
    for name, state, flat, returned in _records(ws):
        seen = True
        if where:
            known.update(flat)
        if all(_matches(_lookup(name, state, flat, key), value) for key, value in where.items()):
            selected.append((name, state, flat, returned))
    for key in where if seen else ():  # with no experiment at all, no key is a typo
        _check_known(key, known, "where")
    if all_fields:
        rows = [{"name": name, "state": state, "config": flat, "results": returned}
                for name, state, flat, returned in selected]
    else:
        varying = _varying([flat for _, _, flat, _ in selected])
        rows = [{"name": name, "state": state,
                 "config": {key: flat[key] for key in varying if key in flat},
                 "results": returned} for name, state, flat, returned in selected]
    if sort is not None and rows:
        rows = _sorted(rows, [flat for _, _, flat, _ in selected], sort, desc)
    return rows


def parse_where(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=0.1", "opt=adam"]`` -> ``{"lr": 0.1, "opt": "adam"}``, values typed by the
    parser ``submit --set/--sweep`` uses (Hydra's), so ``--where`` finds what a sweep wrote:
    ``1e-3`` is the float 0.001, ``yes`` and ``'0.1'`` are strings, ``true`` a bool.
    ``name`` and ``state`` compare as text (``--where name=1e-3`` is the name "1e-3")."""
    where: dict[str, Any] = {}
    items = list(items)
    if not items:
        return where
    from ..config.sweep import parse_override  # Hydra's parser: imported only when needed

    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--where {item!r}: expected KEY=VALUE, e.g. --where lr=0.1")
        if key in where:
            raise UsageError(f"--where: {key!r} is given twice; an experiment has one value "
                             "per key (run the command once per value)")
        if key.startswith("+") or key.startswith("~"):
            raise UsageError(f"--where {item!r}: + and ~ are for submit; write KEY=VALUE")
        value = parse_override(item, option="--where").values[0]
        where[key] = text.strip() if key in ROW_KEYS and not isinstance(value, str) else value
    return where


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Columns and text cells: name, state, the config keys, then ``<task id>.<key>`` results."""
    flat_results = [flatten(row["results"]) for row in rows]
    config_keys = _union(row["config"] for row in rows)
    result_keys = _union(flat_results)
    cells = [[row["name"], row["state"]]
             + [_cell(row["config"].get(k)) for k in config_keys]
             + [_cell(res.get(k)) for k in result_keys]
             for row, res in zip(rows, flat_results)]
    return ["name", "state", *config_keys, *result_keys], cells


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns, cells = table(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(cells)
    return out.getvalue()


def _records(ws: Workspace) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(name, state, flattened config, returned values) of every listed experiment that has
    a readable record, by name; a record's pair is kept in the view cache ``status`` uses."""
    cache = ViewCache(ws)
    found = []
    for state, name, _, output_dir in listed(ws):
        pair = cache.result_row(output_dir, _row_of) if output_dir else None
        if pair is not None:  # None: mid-crash or hand-damaged: `show` explains, here skip
            found.append((name, state.value, *pair))
    cache.save()
    found.sort(key=lambda row: row[0])
    return found


def _row_of(view: dict[str, Any]) -> list[dict[str, Any]]:
    """What a row takes of a record: its flattened config and its steps' returned values
    (a running one's finished steps too)."""
    return [flatten_config(view.get("config") or {}),
            {task_id: task["result"] for task_id, task in (view.get("tasks") or {}).items()
             if task.get("state") == StepState.COMPLETED and task.get("result") is not None}]


def _lookup(name: str, state: str, flat: dict[str, Any], key: str) -> Any:
    if key in flat:
        return flat[key]
    return {"name": name, "state": state}.get(key, _ABSENT)


def _check_known(key: str, known: Iterable[str], option: str) -> None:
    if key not in known:
        raise UsageError(f"--{option} {key}: no experiment listed has this key; "
                         f"{close_matches(key, known)}keys are dotted config keys "
                         "(tasks.<id>.<key> for a task's), name or state")


def _matches(actual: Any, wanted: Any) -> bool:
    if actual is _ABSENT:
        return False
    if isinstance(actual, bool) or isinstance(wanted, bool):  # True must not equal 1
        return type(actual) is type(wanted) and actual == wanted
    return actual == wanted


def _sorted(rows: list[dict[str, Any]], flats: list[dict[str, Any]], key: str,
            desc: bool) -> list[dict[str, Any]]:
    """Rows by ``key``: numbers as numbers, then other values by their text; rows without
    the key last, whichever the direction."""
    values = []
    for row, flat in zip(rows, flats):
        found = _lookup(row["name"], row["state"], flat, key)
        values.append(flatten(row["results"]).get(key, _ABSENT) if found is _ABSENT
                      else found)
    if all(v is _ABSENT for v in values):
        _check_known(key, {*ROW_KEYS, *(k for f in flats for k in f),
                           *(k for r in rows for k in flatten(r["results"]))}, "sort")
    empty = [v is _ABSENT or v is None or v != v for v in values]  # v != v: NaN
    present = [(v, row) for v, row, no in zip(values, rows, empty) if not no]
    missing = [row for row, no in zip(rows, empty) if no]
    present.sort(key=lambda pair: _order(pair[0]), reverse=desc)
    return [row for _, row in present] + missing


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, value if isinstance(value, str) else show_value(value))


def _varying(flats: list[dict[str, Any]]) -> list[str]:
    """Non-bookkeeping keys whose value (or presence) is not the same in every row, sorted."""
    first: dict[str, Any] = {}
    count: dict[str, int] = {}
    varying: set[str] = set()
    for flat in flats:
        for key, value in flat.items():
            if key not in first:
                first[key], count[key] = value, 1
                continue
            count[key] += 1
            seen = first[key]
            if key not in varying and not (type(seen) is type(value) and seen == value):
                varying.add(key)
    varying |= {key for key, n in count.items() if n != len(flats)}
    return sorted(k for k in varying if k not in BOOKKEEPING)


def _union(dicts: Iterable[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return list(keys)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else show_value(value)
