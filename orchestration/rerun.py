"""``rerun``: run an old experiment again against exactly the code it ran with.

The recorded code state (commit + uncommitted patch + untracked files) is rebuilt in a git
worktree under ``Misc/worktrees/``, so the user's own working tree is never touched. A copy
of the experiment's resolved config then points ``pathToTasks`` into that worktree and writes
to a fresh ``<outputDir>-rerun-<n>``; it is validated as ``ready`` would and queued. The
original experiment's folder and record are only read.
"""
from __future__ import annotations

import copy
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .config.schema import spec_from_snapshot
from .exceptions import ProvenanceError
from .fsutil import atomic_write_text
from .ready import Outcome, ReadyContext, commit_experiment, ready_lock, validate_spec
from .records import run_record
from .records.environment import capture_environment
from .records.provenance import fingerprint, materialize
from .records.run_provenance import code_state
from .states import ExperimentState
from .workspace import Workspace

WORKTREES = "worktrees"


def rerun(ws: Workspace, name: str) -> Outcome:
    """Queue ``<name>-rerun-<n>``: ``name``'s config run against ``name``'s recorded code."""
    record = run_record.load_named(ws, name)
    prov = code_state(record)
    if not prov.get("available"):
        why = " ".join(prov.get("warnings", [])) or "none was recorded"
        raise ProvenanceError(f"{name} has no git provenance, so its code cannot be rebuilt "
                              f"for a rerun: {why}")
    # Outside the lock: rebuilding can take a while, and a finished rebuild is reused.
    dest = worktree_path(ws, name, prov)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tasks = materialize(prov, dest)
    with ready_lock(ws):
        ctx = ReadyContext(ws=ws, base=Path.cwd(), in_use=ws.registered())
        output_dir = str(PurePosixPath(record["config"]["outputDir"]))
        n = _first_free(ws, ctx, name, output_dir)
        new_name = f"{name}-rerun-{n}"
        data = copy.deepcopy(record["config"])
        data.update(pathToTasks=str(tasks), outputDir=f"{output_dir}-rerun-{n}")
        path = ws.folder(ExperimentState.NEW) / f"{new_name}.yaml"
        spec, out, warnings, new_prov = validate_spec(ctx, path, new_name,
                                                      spec_from_snapshot(data))
        # The resolved snapshot, so a crash before the queue move leaves a config ``ready``
        # can still take; what runs is the record written below.
        source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        atomic_write_text(path, source)
        new_record = run_record.new_record(new_name, spec, out, source.encode(), new_prov,
                                           capture_environment(), warnings)
        new_record["rerun_of"] = {"name": name, "output_dir": record.get("output_dir"),
                                  "code_state": fingerprint(prov)}
        commit_experiment(ws, new_name, path, out, new_record)
    return Outcome(new_name, True, f"{new_name}: queued, output in {out}, code in {tasks}",
                   warnings=warnings)


def worktree_path(ws: Workspace, name: str, prov: dict[str, Any]) -> Path:
    """``Misc/worktrees/<name>-<short commit>``, or ``-<short hash>`` of a state with
    uncommitted changes (so two code states never share a folder)."""
    clean = not prov.get("patch") and not prov.get("untracked")
    return ws.misc / WORKTREES / f"{name}-{(prov['commit'] if clean else fingerprint(prov))[:12]}"


def _first_free(ws: Workspace, ctx: ReadyContext, name: str, output_dir: str) -> int:
    """The first ``n`` for which both the name and the output folder are unused."""
    n = 1
    while (ws.find(f"{name}-rerun-{n}") is not None or f"{name}-rerun-{n}" in ctx.in_use
           or (ws.output / f"{output_dir}-rerun-{n}").exists()):
        n += 1
    return n
