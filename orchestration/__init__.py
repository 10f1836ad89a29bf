"""job-orchestration: run many experiment configs through Luigi, with provenance.

User code needs only ``TaskBase``; scripts use ``submit``, ``results`` and ``search``. Those
load lazily, so the ``from orchestration import TaskBase`` in every Tasks.py stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

from .taskbase import TaskBase

__all__ = ["TaskBase", "results", "search", "submit"]
__version__ = "0.1.0"

_LAZY = {"submit": "orchestration.submission", "results": "orchestration.records.results",
         "search": "orchestration.adaptive.start"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'orchestration' has no attribute {name!r}")
