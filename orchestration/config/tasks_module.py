"""Import a user's Tasks.py by path and find its TaskBase subclasses.

Each folder gets its own module name, so two folders (say, today's code and a rerun's
worktree) never shadow each other. Imports are cached per folder and file version by a
``TasksLoader`` object, so 1000 configs sharing one Tasks.py import it once.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
import traceback
from pathlib import Path
from types import ModuleType

from ..taskbase import TaskBase


class TasksImportError(Exception):
    """Tasks.py is missing or raised while importing; the message says where."""


def _describe_import_failure(path: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    where = f" (line {frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        where = f" (line {exc.lineno})"
    return f"importing {path} failed{where}: {type(exc).__name__}: {exc}"


class TasksLoader:
    """Imports Tasks.py files, once per folder and file version.

    With ``probe_timeout`` (``ready`` sets it) each file is first imported in a throwaway
    child process: an import that kills its process (``os._exit``, a segfault) or never ends
    then rejects the configs that use it instead of taking ``ready`` down with it.
    """

    def __init__(self, probe_timeout: float | None = None) -> None:
        self._cache: dict[tuple[str, int, int], ModuleType] = {}
        self.probe_timeout = probe_timeout

    def load(self, folder: Path) -> ModuleType:
        path = folder / "Tasks.py"
        try:
            st = path.stat()
        except OSError:
            raise TasksImportError(f"{path} does not exist: pathToTasks must be the folder "
                                   "holding Tasks.py") from None
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in self._cache:
            if self.probe_timeout is not None:
                _probe(path, key[0], self.probe_timeout)
            self._cache[key] = self._import(path, key[0])
        return self._cache[key]

    @staticmethod
    def _import(path: Path, real: str) -> ModuleType:
        name = "orchestration_tasks_" + hashlib.sha1(real.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # Tasks.py may import its sibling modules
        sys.modules[name] = module
        saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep the repo clean
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code too
            del sys.modules[name]
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise TasksImportError(_describe_import_failure(path, exc)) from None
        finally:
            sys.dont_write_bytecode = saved
        return module


def _probe(path: Path, real: str, timeout: float) -> None:
    """Import ``path`` in a child process; raise if that kills or hangs the child. A Python
    exception is left to the real import, whose message names the line."""
    from ..pipeline.isolation import run_attempt

    with tempfile.TemporaryDirectory(prefix="orchestration-probe-") as tmp:
        log = Path(tmp) / "import.log"

        def target(_progress: object) -> None:
            try:
                TasksLoader._import(path, real)
            except TasksImportError:
                pass

        outcome = run_attempt(target, log, timeout, lambda fraction, message: None)
        if outcome.ok:
            return
        printed = log.read_text(errors="replace").strip().splitlines()[-3:]
        why = (outcome.error or "").replace(" before run() returned", "")
        raise TasksImportError(f"importing {path} did not finish ({why}); ready imports it in "
                               "a separate process first, so only the configs using it are "
                               "rejected" + (f"; its last output: {' | '.join(printed)}"
                                             if printed else ""))


def task_classes(module: ModuleType) -> dict[str, type[TaskBase]]:
    """The TaskBase subclasses a Tasks module defines or imports, by name."""
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, TaskBase) and obj is not TaskBase}
