"""The checks that need the filesystem and the workspace: where the output goes, where the
code is. (The checks that need the user's code run in a code host: see ``ready``.)"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..workspace import Workspace

MAX_COMPONENT_BYTES = 200   # NAME_MAX is 255: room for our suffixes (".owner.json.reap-...")
MAX_PATH_BYTES = 1000       # PATH_MAX is 4096: room for the workspace and our files in it


def output_path(ws: Workspace, output_dir: str) -> tuple[Path | None, str | None]:
    """``Output/<outputDir>`` after normalising (symlinks inside ``Output/`` resolved, so a
    link cannot hide one experiment inside another's folder), or a problem when it escapes
    ``Output/`` or cannot be a folder name on this system."""
    if "\x00" in output_dir:
        return None, f"outputDir: {output_dir!r} contains a NUL character"
    pure = PurePosixPath(output_dir)
    if pure.is_absolute() or output_dir.startswith("~"):
        return None, (f"outputDir: {output_dir!r} is absolute; it must be relative to the "
                      "workspace's Output/ folder, e.g. sweep1/lr-0.1")
    if ".." in pure.parts:
        return None, f"outputDir: {output_dir!r} contains '..'; it must stay inside Output/"
    if not pure.parts or pure.parts == (".",):
        return None, (f"outputDir: {output_dir!r} is Output/ itself; it must name a folder "
                      "inside Output/, e.g. sweep1/lr-0.1")
    long = [p for p in pure.parts if len(os.fsencode(p)) > MAX_COMPONENT_BYTES]
    if long or len(os.fsencode(output_dir)) > MAX_PATH_BYTES:
        return None, (f"outputDir: {output_dir[:60]!r}... is too long (each folder name at "
                      f"most {MAX_COMPONENT_BYTES} bytes, the whole at most {MAX_PATH_BYTES}); "
                      "shorten it")
    target = Path(os.path.normpath(ws.output / pure))
    real_output = ws.output.resolve()
    real = target.resolve()  # follows any symlink planted along the way
    if real != real_output and real_output not in real.parents:
        return None, (f"outputDir: {output_dir!r} leads outside Output/ (to {real}) through "
                      "a symlink; remove the link or choose another folder")
    return ws.output / real.relative_to(real_output), None


class OutputIndex(dict):
    """Experiment name -> output folder, indexed so that a conflict check costs the folder's
    depth, not the number of experiments (``ready`` of 1000 configs must not be quadratic)."""

    def __init__(self, in_use: dict[str, Path] | None = None) -> None:
        super().__init__()
        self._owner: dict[Path, str] = {}
        self._below: dict[Path, set[str]] = {}  # folder -> experiments somewhere inside it
        for name, path in (in_use or {}).items():
            self[name] = path

    def __setitem__(self, name: str, path: Path) -> None:
        super().__setitem__(name, path)
        self._owner[path] = name
        for parent in path.parents:
            self._below.setdefault(parent, set()).add(name)

    def occupants(self, target: Path) -> set[str]:
        """The experiments whose folder equals, contains or lies inside ``target``."""
        around = {self._owner.get(folder) for folder in (target, *target.parents)}
        return (around - {None}) | self._below.get(target, set())  # type: ignore[operator]

    def conflict_message(self, target: Path, other: str) -> str:
        return (f"outputDir: folder {target} is already used by experiment {other!r} "
                f"({self[other]}); give each experiment its own outputDir")


def tasks_folder(path_to_tasks: str, base: Path) -> Path:
    """``pathToTasks`` made absolute (relative paths are relative to ``base``)."""
    return Path(os.path.normpath(base / Path(path_to_tasks).expanduser()))
