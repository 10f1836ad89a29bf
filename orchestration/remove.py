"""``remove``: take a finished or failed experiment out of the workspace, losing nothing.

Its config, error file and run record go to ``Misc/trash/<name>-<time>/``, and so does its
output folder unless ``--keep-output`` (models are never deleted silently; empty the trash
yourself). A queued or running experiment is refused: stop it first. Order, for a crash
half-way: output folder, name link, then the config (the commit point: until then the
experiment is still listed, and ``remove`` again finishes the job).
"""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from .exceptions import WrongState
from .states import ExperimentState
from .workspace import Workspace

TRASH = "trash"
REMOVABLE = (ExperimentState.COMPLETED, ExperimentState.FAILED)


def remove(ws: Workspace, name: str, keep_output: bool = False,
           trash: Path | None = None) -> Path:
    """Move ``name`` to the trash; returns the trash folder it went to."""
    state, path = ws.locate(name)
    if state not in REMOVABLE:
        raise WrongState(f"{name} is {state.value}; only completed or failed experiments can "
                         "be removed" + (" (stop its worker first)" if state is
                                         ExperimentState.RUNNING else ""))
    if trash is None:
        trash = ws.misc / TRASH / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    trash.mkdir(parents=True, exist_ok=True)
    link = ws.link(name)
    if link.is_symlink():
        output_dir = ws.output_dir(name)
        if output_dir.exists():
            if keep_output:
                for meta in ("run.json", ".orchestration"):  # the record goes; outputs stay
                    if (output_dir / meta).exists():
                        shutil.move(str(output_dir / meta), str(trash / meta))
            else:
                shutil.move(str(output_dir), str(trash / "output"))
        link.unlink()
    error = ws.error_file(path)
    if error.exists():
        error.rename(trash / error.name)
    path.rename(trash / path.name)
    return trash
