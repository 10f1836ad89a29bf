"""Dotted keys of a config, as every command shows them: ``optimizer.lr``, and the task list
keyed by task id (``tasks.train.epochs``) so inserting a task does not shift every other
task's keys. ``diff``, ``results`` and ``submit --set`` all read keys this way."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Nested mappings as ``{dotted key: value}``; lists are values, not keys."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        _flatten_into(out, str(key), value)
    return out


def _flatten_into(out: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        for sub, item in value.items():
            _flatten_into(out, f"{key}.{sub}", item)
    else:
        out[key] = value


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config flattened, its task list keyed by task id."""
    data = dict(config)
    tasks = data.get("tasks")
    if isinstance(tasks, list) and all(isinstance(t, dict) and "id" in t for t in tasks):
        data["tasks"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in tasks}
    return flatten(data)


def with_parents(keys: Iterable[str]) -> list[str]:
    """``keys`` and the keys of the mappings on their way (``optimizer.lr`` -> ``optimizer``
    too): what a close-match hint chooses from."""
    out: dict[str, None] = {}
    for key in keys:
        parts = key.split(".")
        out.update(dict.fromkeys(".".join(parts[:i]) for i in range(1, len(parts) + 1)))
    return list(out)


def close_matches(key: str, keys: Iterable[str]) -> str:
    """``did you mean lr? `` (or nothing): the close matches of a mistyped key."""
    close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(close)}? " if close else ""
