"""Which code a run really used: the code state at ``ready``, checked again when the run starts.

``ready`` records the code state, but a run may start hours later; if the user committed or
edited in between, the steps import different code from what was recorded. So the code state
is captured once more when a run claims the experiment (once per run, not per step), and when
it differs the run-time state is kept as ``run_provenance`` with a warning. ``diff`` and
``rerun`` then use the code the run actually imported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from . import run_record
from .provenance import ProvenanceCache

RECHECK_SECONDS = 5.0

# What decides the code that runs; remotes or the branch name do not.
_COMPARED = ("available", "commit", "dirty", "patch", "untracked")


def code_state(record: dict[str, Any]) -> dict[str, Any]:
    """The provenance of the code the run imported: the run-time capture when it differed."""
    return record.get("run_provenance") or record.get("provenance") or {
        "available": False, "warnings": ["the run record holds no code state."]}


def drift(ready: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """How the run-time code state ``now`` differs from the ``ready`` capture, in words."""
    changed = [key for key in _COMPARED if ready.get(key) != now.get(key)]
    if not changed:
        return []
    if not now.get("available"):
        return ["code state at run start could not be captured: "
                + " ".join(now.get("warnings", []))]
    out = []
    if "commit" in changed:
        out.append(f"commit {_short(ready.get('commit'))} -> {_short(now.get('commit'))}")
    if "dirty" in changed:
        out.append(f"dirty {ready.get('dirty')} -> {now.get('dirty')}")
    if {"patch", "untracked"} & set(changed):
        out.append("uncommitted changes differ")
    return out


def recheck(output_dir: Path, cache: ProvenanceCache | None = None
            ) -> Callable[[dict[str, Any]], None]:
    """Capture the code state now; returns a record change noting any drift from ``ready``.

    The git calls happen here, outside the record's lock; the change itself is cheap. A
    worker passes its own ``cache`` with a short ``max_age`` (RECHECK_SECONDS): a burst of
    claims of short experiments then shares one capture, at the price of not noticing a
    code change made in the last few seconds before a claim.
    """
    record = run_record.load(output_dir)
    now = (cache or ProvenanceCache()).capture(record["config"]["pathToTasks"])
    changes = drift(record.get("provenance") or {}, now)

    def change(rec: dict[str, Any]) -> None:
        if not changes:  # this run imports the recorded code (a retry may have re-recorded it)
            rec.pop("run_provenance", None)
            return
        rec["run_provenance"] = now
        warning = ("the code changed between ready and the start of the run ("
                   + "; ".join(changes) + "); the run used the code as it was at its start, "
                   "recorded as run_provenance")
        if warning not in rec.setdefault("warnings", []):
            rec["warnings"].append(warning)

    return change


def _short(commit: object) -> str:
    return commit[:12] if isinstance(commit, str) else "none"
