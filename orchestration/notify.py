"""A word when an experiment ends: run the user's command, once, without waiting for it.

``worker --notify CMD`` (and ``notify: [cmd, arg...]`` in a config, which wins for that
experiment) runs the command with a fixed argument list, no shell, when an experiment
completes or fails, with ``ORCH_NAME``, ``ORCH_STATE``, ``ORCH_CAUSE``,
``ORCH_OUTPUT_DIR`` and ``ORCH_RESULTS_JSON`` in its environment. The worker does not wait:
a notifier that fails is logged, one that hangs is killed after ``timeout``, and neither
touches the experiment nor delays the next one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .fsutil import dumps
from .records.run_record import RunRecord

DEFAULT_TIMEOUT = 60.0


@dataclass
class _Call:
    name: str
    process: subprocess.Popen
    deadline: float
    stderr: Any  # a temporary file: a pipe nobody reads while it runs could block it

    def error(self) -> str:
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        self.stderr.close()
        return f": {lines[-1]}" if lines else ""


@dataclass
class Notifier:
    """The notifier calls of one worker."""

    command: list[str] | None
    timeout: float = DEFAULT_TIMEOUT
    log: Callable[[str], None] = lambda message: None
    calls: list[_Call] = field(default_factory=list)

    def ended(self, record: RunRecord) -> None:
        """``record``'s experiment just completed or failed: start its notifier."""
        command = record.config.get("notify") or self.command
        if not command:
            return
        failure = record.failure or {}
        results = {tid: step.result for tid, step in record.tasks.items()
                   if step.result is not None}
        env = {**os.environ, "ORCH_NAME": record.name, "ORCH_STATE": record.state.value,
               "ORCH_CAUSE": failure.get("cause") or "",
               "ORCH_OUTPUT_DIR": record.output_dir,
               "ORCH_RESULTS_JSON": dumps(results, indent=None)}
        stderr = tempfile.TemporaryFile()
        try:
            process = subprocess.Popen(list(command), env=env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=stderr,
                                       start_new_session=True)
        except OSError as exc:
            stderr.close()
            self.log(f"{record.name}: notifier {command[0]!r} could not start: {exc}")
            return
        self.calls.append(_Call(record.name, process, time.monotonic() + self.timeout,
                                stderr))

    def poll(self) -> None:
        """Reap finished notifiers (logging failures) and kill those past their time."""
        still = []
        for call in self.calls:
            code = call.process.poll()
            if code is None and time.monotonic() > call.deadline:
                _kill(call.process)
                self.log(f"{call.name}: notifier killed after {self.timeout:g} s"
                         f"{call.error()}")
            elif code is None:
                still.append(call)
            elif code != 0:
                self.log(f"{call.name}: notifier exited with {code}{call.error()}")
            else:
                call.stderr.close()
        self.calls = still

    def finish(self) -> None:
        """Before the worker exits: let running notifiers end (each within its timeout)."""
        while self.calls:
            self.poll()
            if self.calls:
                time.sleep(0.05)  # waiting for notifier processes we started, bounded


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()

