"""Which code a run really used: the code state at ``ready``, checked again when the run starts.

``ready`` records the code state, but a run may start hours later; if the user committed or
edited in between, the steps import different code from what was recorded. So the code state
is captured once more when a run claims the experiment (once per run, not per step), and when
it differs the run-time state is kept as ``run_provenance`` with a warning. ``diff`` and
``rerun`` then use the code the run actually imported (``RunRecord.code_state``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .provenance import Provenance, ProvenanceCache
from .run_record import RunRecord

RECHECK_SECONDS = 5.0

# What decides the code that runs; remotes or the branch name do not.
_COMPARED = ("available", "commit", "dirty", "patch", "untracked")


def drift(ready: Provenance, now: Provenance) -> list[str]:
    """How the run-time code state ``now`` differs from the ``ready`` capture, in words."""
    changed = [key for key in _COMPARED if getattr(ready, key) != getattr(now, key)]
    if not changed:
        return []
    if not now.available:
        return [f"code state at run start could not be captured: {now.why_missing()}"]
    out = []
    if "commit" in changed:
        out.append(f"commit {_short(ready.commit)} -> {_short(now.commit)}")
    if "dirty" in changed:
        out.append(f"dirty {ready.dirty} -> {now.dirty}")
    if {"patch", "untracked"} & set(changed):
        out.append("uncommitted changes differ")
    return out


def recheck(output_dir: Path, cache: ProvenanceCache | None = None
            ) -> Callable[[RunRecord], None]:
    """Capture the code state now; returns a record change noting any drift from ``ready``.

    The git calls happen here, outside the record's lock; the change itself is cheap. A
    worker passes its own ``cache`` with a short ``max_age`` (RECHECK_SECONDS): a burst of
    claims of short experiments then shares one capture, at the price of not noticing a
    code change made in the last few seconds before a claim.
    """
    record = RunRecord.load(output_dir)
    now = (cache or ProvenanceCache()).capture(record.config["pathToTasks"])
    changes = drift(record.provenance, now)

    def change(rec: RunRecord) -> None:
        if not changes:  # this run imports the recorded code (a retry may have re-recorded it)
            rec.run_provenance = None
            return
        rec.run_provenance = now
        warning = ("the code changed between ready and the start of the run ("
                   + "; ".join(changes) + "); the run used the code as it was at its start, "
                   "recorded as run_provenance")
        if warning not in rec.warnings:
            rec.warnings.append(warning)

    return change


def _short(commit: object) -> str:
    return commit[:12] if isinstance(commit, str) else "none"
