"""The Python environment a run used, so two runs' results can be told apart by their packages."""
from __future__ import annotations

import functools
import platform
import re
import sys
from importlib import metadata
from typing import Any


def capture_environment() -> dict[str, Any]:
    """Interpreter, platform and installed package versions of this process (JSON-ready)."""
    env = _environment()
    return {**env, "packages": dict(env["packages"])}  # callers may mutate their copy


@functools.cache
def _environment() -> dict[str, Any]:
    # Installed packages do not change under a running process, and scanning them is slow.
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # a broken install can lack metadata
            # The first one found is the one imports use, as with importlib.metadata.version().
            packages.setdefault(_normalise(name), dist.version)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }


def environment_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Readable differences from ``a`` to ``b``: ``numpy: 1.26.0 -> 2.0.1``, ``+ torch 2.3.0``."""
    lines = [
        f"{key}: {a.get(key)} -> {b.get(key)}"
        for key in ("python", "implementation", "platform", "executable")
        if a.get(key) != b.get(key)
    ]
    old, new = a.get("packages") or {}, b.get("packages") or {}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            lines.append(f"- {name} {old[name]}")
        elif name not in old:
            lines.append(f"+ {name} {new[name]}")
        elif old[name] != new[name]:
            lines.append(f"{name}: {old[name]} -> {new[name]}")
    return lines


def _normalise(name: str) -> str:
    """PEP 503 name, so ``Typing_Extensions`` and ``typing-extensions`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()
