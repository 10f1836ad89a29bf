"""Two runs side by side: config differences, code diff and environment differences.

Works from the run records alone, so two runs can be compared long after the user's tree
has moved on: the code diff rebuilds each recorded code state (commit + patch + untracked
files) instead of reading today's files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..config.keys import flatten_config
from ..exceptions import ProvenanceError
from .environment import environment_diff
from .provenance import code_diff
from .run_record import RunRecord

_ABSENT = object()
# Always differs between two experiments (that is what keeps their folders apart): last.
LAST_KEYS = ("outputDir",)


def show_value(value: Any) -> str:
    """A value as JSON, so ``1`` and ``"1"`` read differently."""
    return json.dumps(value, default=str, ensure_ascii=False)


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences from config ``a`` to ``b``: ``lr: 0.1 -> 0.2``, ``+ seed: 3``, ``- seed: 1``."""
    flat_a, flat_b = flatten_config(a), flatten_config(b)
    keys = sorted(flat_a.keys() | flat_b.keys(), key=lambda k: (k in LAST_KEYS, k))
    lines = []
    for key in keys:
        old, new = flat_a.get(key, _ABSENT), flat_b.get(key, _ABSENT)
        if old is _ABSENT:
            lines.append(f"+ {key}: {show_value(new)}")
        elif new is _ABSENT:
            lines.append(f"- {key}: {show_value(old)}")
        elif show_value(old) != show_value(new):
            lines.append(f"{key}: {show_value(old)} -> {show_value(new)}")
    return lines


@dataclass
class Comparison:
    """What ``diff`` prints: each part ready to show (empty when there is no difference)."""

    config: list[str]
    code: str
    environment: list[str]


def compare(record_a: RunRecord, record_b: RunRecord) -> Comparison:
    """Compare two run records; the code diff uses the code each run actually imported."""
    try:
        code = code_diff(record_a.code_state(), record_b.code_state())
    except ProvenanceError as exc:  # the config and environment are still worth showing
        code = f"no code diff: {exc}\n"
    return Comparison(config=config_diff(record_a.config, record_b.config), code=code,
                      environment=environment_diff(record_a.environment, record_b.environment))
