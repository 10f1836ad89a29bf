"""The workspace: folders that hold every config in exactly one state, plus outputs.

A config's state *is* the folder it is in; moves between folders are single ``os.rename``
calls on one filesystem, so a crash never leaves a config in two states or in none. Each
readied experiment also gets ``Misc/experiments/<name>``, a symlink to its output folder: it
reserves the name, maps name -> output folder in one ``readlink`` and lists every output
folder in use without parsing any YAML.
"""
from __future__ import annotations

import os
from pathlib import Path

from .exceptions import UnknownExperiment, UsageError, WorkspaceError
from .states import ExperimentState

ENV_VAR = "JOB_ORCHESTRATION_WORKSPACE"
CONFIG_SUFFIXES = (".yaml", ".yml")


class Workspace:
    """Paths and atomic moves of one workspace. Cheap to construct; holds no open state."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self.output = self.root / "Output"
        self.misc = self.root / "Misc"
        self.experiments = self.misc / "experiments"

    @classmethod
    def from_setting(cls, arg: str | os.PathLike | None, must_exist: bool = True) -> "Workspace":
        """The workspace named by ``--workspace`` or ``$JOB_ORCHESTRATION_WORKSPACE``."""
        value = arg or os.environ.get(ENV_VAR)
        if not value:
            raise UsageError(f"no workspace set: pass --workspace DIR or export {ENV_VAR}=DIR")
        ws = cls(value)
        if must_exist and not (ws.root / ExperimentState.QUEUED.folder).is_dir():
            raise WorkspaceError(
                f"{ws.root} is not an initialised workspace: run `job-orchestration init "
                f"--workspace {ws.root}` first")
        if must_exist and not ws.experiments.is_dir():  # one job-orchestration 0.0.7 made:
            ws.init()  # it lacks ConfigsInProgress/ and Misc/experiments/
        return ws

    def folder(self, state: ExperimentState) -> Path:
        return self.root / state.folder

    def init(self) -> list[Path]:
        """Create the folders (idempotent); returns the ones that were new."""
        created = []
        for path in [*(self.folder(s) for s in ExperimentState), self.output, self.misc,
                     self.experiments]:
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                created.append(path)
        os.chmod(self.misc, 0o700)  # scheduler state is a pickle: keep it private
        return created

    # --- configs in state folders -------------------------------------------------------
    def config_files(self, state: ExperimentState) -> list[Path]:
        """Config files in a state folder, sorted by name; skips hidden and swap files."""
        return [Path(f) for f in self.config_paths(state)]

    def config_paths(self, state: ExperimentState) -> list[str]:
        """``config_files`` as strings: listings of 10,000 skip making as many Paths."""
        try:
            entries = os.scandir(self.folder(state))
        except FileNotFoundError:
            return []
        with entries:  # a symlink is listed even when it dangles: `ready` must judge it
            files = [e.path for e in entries
                     if e.name.endswith(CONFIG_SUFFIXES) and not e.name.startswith((".", "~", "#"))
                     and (e.is_file() or e.is_symlink())]
        return sorted(files)  # strings sort ~10x faster than Paths

    def find(self, name: str) -> tuple[ExperimentState, Path] | None:
        """The state and file of experiment ``name``, or None."""
        for state in (ExperimentState.RUNNING, ExperimentState.QUEUED, ExperimentState.FAILED,
                      ExperimentState.COMPLETED, ExperimentState.NEW):
            for suffix in CONFIG_SUFFIXES:
                path = self.folder(state) / f"{name}{suffix}"
                if path.is_file():
                    return state, path
        return None

    def locate(self, name: str) -> tuple[ExperimentState, Path]:
        found = self.find(name)
        if found is None:
            known = [p.stem for state in ExperimentState for p in self.config_files(state)]
            raise UnknownExperiment(name, known, str(self.root))
        return found

    def move(self, path: Path, to: ExperimentState, missing_ok: bool = False) -> Path | None:
        """Rename ``path`` into the folder of ``to``. Losing a race (``path`` gone) raises
        FileNotFoundError, or returns None with ``missing_ok``."""
        dest = self.folder(to) / path.name
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            if dest.exists() and not path.exists():
                return dest  # NFS: a retried rename reports ENOENT after it succeeded
            if missing_ok:
                return None
            raise
        return dest

    def error_file(self, config_path: Path) -> Path:
        return self.folder(ExperimentState.FAILED) / f"{config_path.stem}.error.txt"

    # --- experiment name -> output folder ---------------------------------------------------
    def link(self, name: str) -> Path:
        return self.experiments / name

    def register(self, name: str, output_dir: Path) -> None:
        """Reserve ``name`` for ``output_dir``; FileExistsError when the name is taken."""
        os.symlink(os.path.relpath(output_dir, self.experiments), self.link(name))

    def output_dir(self, name: str) -> Path:
        """The output folder of a readied experiment (WorkspaceError if it was not)."""
        try:
            target = os.readlink(self.link(name))
        except FileNotFoundError:
            raise WorkspaceError(f"experiment {name!r} has no output folder: it was never "
                                 "readied (see `job-orchestration status`)") from None
        return Path(os.path.normpath(self.experiments / target))

    def registered(self) -> dict[str, Path]:
        """Every readied experiment's name and output folder."""
        return {name: Path(folder) for name, folder in self.registered_paths().items()}

    def registered_paths(self) -> dict[str, str]:
        """``registered`` as strings (this runs for every experiment on every status)."""
        out = {}
        try:
            entries = os.scandir(self.experiments)
        except FileNotFoundError:
            return out
        base = str(self.experiments)
        with entries:
            for e in entries:
                out[e.name] = os.path.normpath(os.path.join(base, os.readlink(e.path)))
        return out
