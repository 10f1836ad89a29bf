"""Run one attempt of a step in a forked child, so nothing it does can take the worker down.

Luigi's own child handling hangs forever on a child that exits 0 without reporting, reaps
only by exit code or timeout, and leaves grandchildren behind; so we fork and watch the
child ourselves. The child reports over a pipe (progress lines, then its result); the parent
waits on a pidfd, so a child that exits (with any code, 0 included), is killed or segfaults
is seen at once. Forking from the warm runner costs about 2 ms (Luigi makes it a big process),
far less than starting an interpreter.
"""
from __future__ import annotations

import ctypes
import faulthandler
import io
import json
import logging
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ProgressFn = Callable[[float, "str | None"], None]
TERM_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


@dataclass
class AttemptOutcome:
    """How one attempt ended; ``error`` is a one-line reason when it did not succeed."""

    ok: bool
    seconds: float
    result: Any = None
    error: str | None = None


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), so no step
    outlives the worker that started it."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(137)


def _child(target: Callable[[ProgressFn], Any], log_path: Path, write_fd: int) -> None:
    """Body of the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # own process group: a timeout kills the step and what it started
        die_with_parent()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        out = os.fdopen(write_fd, "w", buffering=1)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), line_buffering=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), line_buffering=True)
        _log_to_stderr()
        faulthandler.enable()  # a segfault's Python traceback goes to the log too

        def progress(fraction: float, message: str | None = None) -> None:
            out.write(json.dumps({"progress": fraction, "message": message}) + "\n")

        try:
            result = target(progress)
        except BaseException as exc:  # the user's code failed: report, don't propagate
            traceback.print_exc()
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        else:
            try:
                payload = json.dumps({"result": result})
                code = 0
            except (TypeError, ValueError) as exc:
                payload = json.dumps({"error": "run() returned a value that is not "
                                               f"JSON-serialisable: {exc}"})
        out.write(payload + "\n")
        out.flush()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _log_to_stderr() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("luigi", "luigi-interface"):  # the parent's luigi chatter is not the step's
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = False


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
        return f"the process was killed by {name}"
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "the process exited with code 0 before run() returned (os._exit?)"
    return f"the process exited with code {code} before run() returned"


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_attempt(target: Callable[[ProgressFn], Any], log_path: Path, timeout: float | None,
                on_progress: ProgressFn) -> AttemptOutcome:
    """Run ``target(progress)`` in a child process and wait for it, at most ``timeout`` s."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(target, log_path, write_fd)
    try:
        os.setpgid(pid, pid)  # also here: a timeout may come before the child's own setpgid
    except OSError:
        pass  # the child got there first (or is gone)
    os.close(write_fd)
    try:
        messages, status, timed_out = _watch(pid, read_fd, timeout, on_progress)
    finally:
        os.close(read_fd)
        _kill_group(pid, signal.SIGKILL)  # grandchildren the step left behind
    seconds = time.monotonic() - start
    final = messages[-1] if messages else {}
    if timed_out:
        return AttemptOutcome(False, seconds, error=f"timed out after {timeout:g} s and was "
                                                    "killed")
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and "result" in final:
        return AttemptOutcome(True, seconds, result=final["result"])
    return AttemptOutcome(False, seconds, error=final.get("error") or _describe_status(status))


def _watch(pid: int, read_fd: int, timeout: float | None, on_progress: ProgressFn
           ) -> tuple[list[dict], int, bool]:
    """Collect the child's messages until it exits or passes ``timeout``."""
    pidfd = os.pidfd_open(pid)
    deadline = None if timeout is None else time.monotonic() + timeout
    buffer = b""
    messages: list[dict] = []
    timed_out = False
    os.set_blocking(read_fd, False)
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read_fd, pidfd], [], [], wait)
            if not ready:
                timed_out = True
                _kill_group(pid, signal.SIGTERM)
                if not select.select([pidfd], [], [], TERM_GRACE_SECONDS)[0]:
                    _kill_group(pid, signal.SIGKILL)
                break
            buffer = _drain(read_fd, buffer, messages, on_progress)
            if pidfd in ready:
                break
        _, status = os.waitpid(pid, 0)
        _drain(read_fd, buffer, messages, on_progress)
    finally:
        os.close(pidfd)
    return messages, status, timed_out


def _drain(fd: int, buffer: bytes, messages: list[dict], on_progress: ProgressFn) -> bytes:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        buffer += chunk
    *lines, buffer = buffer.split(b"\n")
    for line in lines:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "progress" in msg:
            on_progress(msg["progress"], msg.get("message"))
        else:
            messages.append(msg)
    return buffer
