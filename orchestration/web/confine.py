"""Names and paths from URLs, kept inside the workspace.

A URL names an experiment and a step; the files behind them are found through the
workspace (the experiment's link in ``Misc/experiments``, the step's entry in its run record)
and must resolve, symlinks followed, inside ``Output/``. Anything else is ``NotFound``: the
server answers 404 without saying which rule refused it.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..states import ExperimentState
from ..workspace import Workspace

MAX_NAME = 255  # a file name's limit on every common filesystem


class NotFound(Exception):
    """Nothing to show at this URL (unknown, or not allowed: the answer is the same)."""


def experiment_name(raw: str) -> str:
    """``raw`` if it can be an experiment's name: one plain file name, no path in it."""
    if (not raw or len(raw) > MAX_NAME or raw.startswith(".") or "\0" in raw
            or "/" in raw or "\\" in raw):
        raise NotFound(raw)
    return raw


def inside(path: str | os.PathLike, root: str | os.PathLike) -> Path | None:
    """``path`` with symlinks resolved, if that lies strictly inside ``root`` (resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return Path(real) if real.startswith(base + os.sep) else None


def locate(ws: Workspace, raw: str) -> tuple[str, ExperimentState, Path]:
    """The experiment a URL names: its name, state and config file."""
    name = experiment_name(raw)
    found = ws.find(name)
    if found is None or found[0] is ExperimentState.NEW:
        raise NotFound(name)
    return name, found[0], found[1]


def output_dir(ws: Workspace, name: str) -> Path | None:
    """The experiment's output folder if it was readied; NotFound if its link leads out of
    ``Output/``."""
    link = ws.link(experiment_name(name))
    if not os.path.islink(link):
        return None
    folder = inside(link, ws.output)
    if folder is None:
        raise NotFound(name)
    return folder


def step_log(folder: str | os.PathLike, task: dict) -> Path:
    """A step's log as its run-record entry names it, if that stays inside the experiment's
    output ``folder`` (it need not exist yet)."""
    log = task.get("log")
    path = inside(log, folder) if isinstance(log, str) and os.path.isabs(log) else None
    if path is None or (path.exists() and not path.is_file()):
        raise NotFound(log)
    return path
