"""Run ``job-orchestration worker`` with one fault injected at a precise point (test code).

    python tests/e2e/fault_driver.py FAULT ARG [WORKER OPTIONS...]

FAULT ARG is one of
  kill-writing NAME[:TEXT]  SIGKILL the worker when a complete temp file is about to replace the
                            file called NAME (whose new content holds TEXT): a kill -9 between
                            the write of a marker or run record and its rename into place
  kill-finishing STATE      SIGKILL the worker when a config is about to be moved to the
                            folder STATE (the commit point of a run's end)
  enospc-writing NAME       every atomic write of a file called NAME fails with ENOSPC, as on a
                            full disk

The kill takes the worker process and the process that hit the fault point (a runner, which
would die with the worker anyway), like ``kill -9`` of the worker with the kernel's help. The
patches are made before the worker forks, so its runners inherit them; nothing in the package
knows about them.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from orchestration import fsutil
from orchestration.cli.main import main
from orchestration.states import ExperimentState
from orchestration.workspace import Workspace

WORKER = os.getpid()


def _kill_worker() -> None:
    os.kill(WORKER, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def kill_writing(spec: str) -> None:
    name, _, text = spec.partition(":")
    real_replace = os.replace

    def replace(src: str | os.PathLike, dst: str | os.PathLike, **kwargs: object) -> None:
        if (Path(dst).name == name and Path(src).name.startswith(fsutil.TMP_MARK)
                and text.encode() in Path(src).read_bytes()):
            _kill_worker()
        real_replace(src, dst, **kwargs)

    os.replace = replace


def kill_finishing(state: str) -> None:
    real_move = Workspace.move

    def move(ws: Workspace, path: Path, to: ExperimentState, missing_ok: bool = False
             ) -> Path | None:
        if to.folder == state:
            _kill_worker()
        return real_move(ws, path, to, missing_ok)

    Workspace.move = move  # type: ignore[method-assign]


def enospc_writing(name: str) -> None:
    real_write = fsutil.atomic_write

    def write(path: Path, data: bytes | str, **kwargs: bool) -> None:
        if path.name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data, **kwargs)

    fsutil.atomic_write = write


FAULTS: dict[str, Callable[[str], None]] = {
    "kill-writing": kill_writing, "kill-finishing": kill_finishing,
    "enospc-writing": enospc_writing}

if __name__ == "__main__":
    fault, arg, *worker_args = sys.argv[1:]
    FAULTS[fault](arg)
    sys.exit(main(["worker", *worker_args]))
