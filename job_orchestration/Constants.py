"""0.0.7's workspace paths, read-only: ``from job_orchestration.Constants import output_location``.

Each path is worked out when read, from ``JOB_ORCHESTRATION_WORKSPACE`` (the CLI sets it to
its ``--workspace`` for the code it runs, so tasks see the workspace they run in), as a
string like 0.0.7's. Assigning one is an error: 0.0.7 let a script move its own idea of a
folder while the rest of the system kept the real one. 0.0.7's ``max_error_count`` is gone:
set ``retries`` per task instead.
"""
from __future__ import annotations

import os
import sys
import types

from orchestration.exceptions import UsageError
from orchestration.states import ExperimentState
from orchestration.workspace import ENV_VAR, Workspace

config_yaml = "config.yaml"  # the copy of the resolved config in each output folder

_FOLDERS = {
    "config_source_location": ExperimentState.NEW.folder,
    "config_ready_location": ExperimentState.QUEUED.folder,
    "config_in_progress_location": ExperimentState.RUNNING.folder,
    "config_completed_location": ExperimentState.COMPLETED.folder,
    "config_failed_location": ExperimentState.FAILED.folder,
    "output_location": "Output",
    "misc_location": "Misc",
}
__all__ = ["BASE_FOLDER", *_FOLDERS, "config_yaml"]


def _root() -> str:
    value = os.environ.get(ENV_VAR)
    if not value:
        raise UsageError(f"job_orchestration.Constants: {ENV_VAR} is not set; export "
                         f"{ENV_VAR}=DIR (the workspace folder)")
    return str(Workspace(value).root)


def __getattr__(name: str) -> str:
    if name == "BASE_FOLDER":
        return _root()
    if name in _FOLDERS:
        return os.path.join(_root(), _FOLDERS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ReadOnly(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{__name__}.{name} is read-only: the workspace comes from "
                             f"{ENV_VAR} (or --workspace on the command line)")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)


sys.modules[__name__].__class__ = _ReadOnly
