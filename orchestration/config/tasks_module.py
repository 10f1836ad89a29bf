"""Import a user's Tasks.py and find its TaskBase subclasses.

This runs only inside a code host (``orchestration.codehost``): a process of its own per code
folder, so two folders' ``helpers.py`` never see each other, a resolver or global one Tasks.py
registers never reaches another config, and an import that exits, segfaults or hangs costs
only the configs that use that folder.
"""
from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from ..exceptions import TasksImportError
from ..taskbase import TaskBase

MODULE_NAME = "Tasks"  # as the user would import it: child processes they spawn can too


def _describe_import_failure(path: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    where = f" (line {frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        where = f" (line {exc.lineno})"
    return f"importing {path} failed{where}: {type(exc).__name__}: {exc}"


def import_tasks(folder: Path) -> ModuleType:
    """Import ``folder/Tasks.py`` (its folder first on ``sys.path``, so it can import its
    sibling modules) without writing bytecode into the user's repository."""
    path = folder / "Tasks.py"
    if not path.is_file():
        raise TasksImportError(f"{path} does not exist: pathToTasks must be the folder "
                               "holding Tasks.py")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    sys.modules[MODULE_NAME] = module
    sys.dont_write_bytecode = True  # importing must never make a clean repository dirty
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code too
        del sys.modules[MODULE_NAME]
        raise TasksImportError(_describe_import_failure(path, exc)) from None
    return module


def task_classes(module: ModuleType) -> dict[str, type[TaskBase]]:
    """The TaskBase subclasses a Tasks module defines or imports, by name."""
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, TaskBase) and obj is not TaskBase}
