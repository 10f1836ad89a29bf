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

import yaml

from .config.schema import spec_from_snapshot
from .exceptions import ConfigError, ProvenanceError
from .fsutil import atomic_write
from .ready import Outcome, Readier, ready_lock
from .records.provenance import Provenance, materialize
from .records.run_record import RunRecord, load_named
from .states import ExperimentState
from .workspace import Workspace

WORKTREES = "worktrees"


def rerun(ws: Workspace, name: str) -> Outcome:
    """Queue ``<name>-rerun-<n>``: ``name``'s config run against ``name``'s recorded code."""
    record = load_named(ws, name)
    prov = record.code_state()
    if not prov.available:
        raise ProvenanceError(f"{name} has no git provenance, so its code cannot be rebuilt "
                              f"for a rerun: {prov.why_missing()}")
    # Outside the lock: rebuilding can take a while, and a finished rebuild is reused.
    dest = worktree_path(ws, name, prov)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tasks = materialize(prov, dest)
    with ready_lock(ws):
        readier = Readier(ws)
        output_dir = str(PurePosixPath(record.config["outputDir"]))
        n = _first_free(ws, readier, name, output_dir)
        new_name = f"{name}-rerun-{n}"
        data = copy.deepcopy(record.config)
        data.update(pathToTasks=str(tasks), outputDir=f"{output_dir}-rerun-{n}")
        path = ws.folder(ExperimentState.NEW) / f"{new_name}.yaml"
        # The resolved snapshot, so a crash before the queue move leaves a config `ready`
        # can still take; what runs is the record written at the commit.
        source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        atomic_write(path, source)
        try:
            candidate = readier.prepare_spec(path, new_name, spec_from_snapshot(data),
                                             source.encode())
        except ConfigError as exc:
            return readier.reject(path, str(exc))
        readier.validate([candidate])

        def annotate(new: RunRecord) -> None:
            new.extra["rerun_of"] = {"name": name, "output_dir": record.output_dir,
                                     "code_state": prov.fingerprint()}

        outcome = readier.commit(candidate, annotate)
    if outcome.queued:
        outcome.message = f"{new_name}: queued, output in {candidate.output_dir}, code in {tasks}"
    return outcome


def worktree_path(ws: Workspace, name: str, prov: Provenance) -> Path:
    """``Misc/worktrees/<name>-<short commit>``, or ``-<short hash>`` of a state with
    uncommitted changes (so two code states never share a folder)."""
    clean = not prov.patch and not prov.untracked
    return ws.misc / WORKTREES / f"{name}-{(prov.commit if clean else prov.fingerprint())[:12]}"


def _first_free(ws: Workspace, readier: Readier, name: str, output_dir: str) -> int:
    """The first ``n`` for which both the name and the output folder are unused."""
    n = 1
    while (ws.find(f"{name}-rerun-{n}") is not None or f"{name}-rerun-{n}" in readier.in_use
           or (ws.output / f"{output_dir}-rerun-{n}").exists()):
        n += 1
    return n
