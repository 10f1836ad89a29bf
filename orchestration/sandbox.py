"""Run one attempt of user code in a forked child, so nothing it does can take us down.

Luigi's own child handling hangs forever on a child that exits 0 without reporting, reaps
only by exit code or timeout, and leaves grandchildren behind; so we fork and watch the child
ourselves. The child reports over a pipe (progress lines, then its result); the parent waits
on a pidfd, so a child that exits (with any code, 0 included), is killed or segfaults is seen
at once, and ``wait4`` gives its peak memory. However it ends, the caller gets an
``AttemptOutcome`` whose ``failure`` names the cause.
"""
from __future__ import annotations

import dataclasses
import decimal
import faulthandler
import json
import logging
import math
import numbers
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .containment import Box, die_with_parent, oom_kills
from .failures import Failure, FailureCause, human_bytes, signal_name

ProgressFn = Callable[[float, "str | None"], None]
TERM_GRACE_SECONDS = 5.0
RESULT_CAP = 16 * 1024 * 1024  # a return value is a summary; bigger belongs in a file
LIKELY_OOM_BYTES = 1 << 30  # a SIGKILLed step this big was most likely the OOM killer's
STOPPED_FROM_OUTSIDE = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_MAX_DEPTH = 100


@dataclass
class AttemptRequest:
    """What one attempt needs besides the code: where its output goes and its limits."""

    log: str | None           # None: the attempt prints where its host prints
    attempt: int = 1
    timeout: float | None = None
    stall_after: float | None = None
    stall_kill: bool = False
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    code_folder: str | None = None  # frames in files under it are "the user's code"
    header: str | None = None       # a line the log gets before the attempt's output


@dataclass
class AttemptOutcome:
    """How one attempt ended: ``failure`` is None when ``run()`` returned and its value
    (converted to JSON, see ``to_json_value``) is ``result``."""

    seconds: float
    result: Any = None
    failure: Failure | None = None
    peak_rss: int | None = None     # bytes
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["failure"] = self.failure.to_json() if self.failure else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AttemptOutcome":
        failure = Failure.from_json(data["failure"]) if data.get("failure") else None
        return cls(seconds=data["seconds"], result=data.get("result"), failure=failure,
                   peak_rss=data.get("peak_rss"), warnings=data.get("warnings") or [])


# --- the value run() returned ---------------------------------------------------------------
def to_json_value(value: Any, warnings: list[str], depth: int = 0) -> Any:
    """``value`` as JSON data, whatever an ML user returns: numpy scalars and arrays, paths,
    tuples, sets, dataclasses, objects with ``tolist()``/``item()``. Anything else is kept as
    its ``repr`` with a warning: a finished step never fails for its return value. NaN and
    infinities become the strings ``nan``/``inf``/``-inf`` (JSON has no such numbers)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > _MAX_DEPTH:
        warnings.append("the return value nests too deeply; kept as its repr below that")
        return repr(value)
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_json_value(v, warnings, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, warnings, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_json_value(v, warnings, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json_value(dataclasses.asdict(value), warnings, depth + 1)
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "kind", None) == "f" and getattr(dtype, "itemsize", 8) < 8 \
            and getattr(value, "ndim", None) == 0:
        try:  # a float32 scalar: 0.93 as numpy prints it, not the 0.9300000071525574 of item()
            return to_json_value(float(str(value)), warnings, depth + 1)
        except ValueError:
            pass
    for method in ("tolist", "item"):  # numpy, torch, jax, pandas scalars and arrays
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                return to_json_value(convert(), warnings, depth + 1)
            except Exception:  # noqa: BLE001 - user objects: fall through to repr
                pass
    if isinstance(value, (numbers.Real, decimal.Decimal)):  # Fraction, Decimal...
        return to_json_value(float(value), warnings, depth + 1)
    warnings.append(f"the return value holds a {type(value).__name__}, which is not JSON; "
                    "it is kept as its repr")
    return repr(value)


# --- the child -------------------------------------------------------------------------------
_OURS = os.path.dirname(os.path.abspath(__file__)) + os.sep  # this package's files


def _print_traceback(exc: BaseException) -> None:
    """The traceback to the log from the first frame that is not ours: a user reads their own
    code's frames, not the sandbox's and the code host's that called it."""
    tb = exc.__traceback__
    while (tb is not None and tb.tb_next is not None
           and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_OURS)):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _user_frame(exc: BaseException, code_folder: str | None) -> str | None:
    """``file:line`` of the last frame of the user's own code in the traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = os.path.abspath(frame.filename)
        if code_folder and path.startswith(code_folder.rstrip("/") + "/"):
            return f"{os.path.relpath(path, code_folder)}:{frame.lineno}"
    for frame in reversed(frames):
        path = os.path.abspath(frame.filename)
        if not path.startswith(_OURS) and "site-packages" not in path and (
                not path.startswith(sys.base_prefix)):
            return f"{os.path.basename(path)}:{frame.lineno}"
    return None


def _child(target: Callable[[ProgressFn], Any], request: AttemptRequest, write_fd: int,
           parent: int) -> None:
    """Body of the forked child; never returns. Kept short: every line here is paid once
    per attempt (see ``prepare_process`` for what a host sets up once for all of them)."""
    code = 1
    try:
        os.setpgid(0, 0)  # own process group: a timeout kills the step and what it started
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if request.log is not None:
            log_fd = os.open(request.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if request.header:  # written here: one open of the log per attempt, not two
                os.write(log_fd, request.header.encode() + b"\n")
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            _streams_on_fds()
        os.environ.update(request.env)
        if request.cwd:
            os.chdir(request.cwd)

        def progress(fraction: float, message: str | None = None) -> None:
            os.write(write_fd, json.dumps({"progress": fraction, "message": message}).encode()
                     + b"\n")

        warnings: list[str] = []
        try:
            payload = {"result": to_json_value(target(progress), warnings),
                       "warnings": warnings}
        except BaseException as exc:  # the user's code failed: report, don't propagate
            _print_traceback(exc)
            if isinstance(exc, SystemExit):
                payload = {"exit": exc.code if isinstance(exc.code, int) else 1}
            else:
                payload = {"exception": type(exc).__name__, "message": str(exc)[:2000],
                           "where": _user_frame(exc, request.code_folder)}
        for warning in payload.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        text = json.dumps(payload, allow_nan=False).encode()
        if len(text) > RESULT_CAP:
            text = json.dumps({"too_big": len(text)}).encode()
        view = memoryview(text + b"\n")
        while view:
            view = view[os.write(write_fd, view):]
        os.close(write_fd)  # the end of the pipe, before the exit: a caller may go on at once
        code = 0
    finally:
        os._exit(code)


def _streams_on_fds() -> None:
    """``sys.stdout``/``sys.stderr`` writing to fds 1 and 2 (the log): a caller may have
    replaced them (a test runner's capture), and then prints would not reach the log."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            if getattr(sys, name).fileno() == fd:
                continue
        except (OSError, ValueError, AttributeError):
            pass
        setattr(sys, name, open(fd, "w", buffering=1, closefd=False))


def prepare_process() -> None:
    """Set up, once, a process that forks attempts (a code host): its attempts' stdout and
    stderr become their logs; here the ``logging`` module is sent there too (INFO and up,
    not Luigi's chatter), a segfault's Python traceback as well, and stdin is /dev/null so
    user code never waits on a terminal nobody watches."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _streams_on_fds()
    for stream in (sys.stdout, sys.stderr):  # a log file: line by line, so that a crash
        stream.reconfigure(line_buffering=True)  # loses no printed line
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("luigi", "luigi-interface"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = False
    faulthandler.enable()


# --- the parent ------------------------------------------------------------------------------
@dataclass
class _Watch:
    messages: list[dict] = field(default_factory=list)
    status: int = 0  # until it exited (``exited``): taken to be 0, its result being in
    exited: bool = False
    peak_rss: int | None = None
    killed_for: FailureCause | None = None  # we ended it: timeout or stall
    last_progress: float | None = None
    oom: bool = False


def run_attempt(target: Callable[[ProgressFn], Any], request: AttemptRequest,
                on_progress: ProgressFn, box: Box | None = None,
                after: list[Callable[[], None]] | None = None) -> AttemptOutcome:
    """Run ``target(progress)`` in a child process and wait for it (see the module doc).

    With ``after``, an attempt whose result is in returns without waiting for its process
    to exit (an exit costs milliseconds, more for a big process); reaping it and emptying
    ``box`` are appended to ``after``, for the caller to run before its next attempt (a
    code host: once it has answered)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    parent = os.getpid()
    ooms = oom_kills()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(target, request, write_fd, parent)
    try:
        os.setpgid(pid, pid)  # also here: a timeout may come before the child's own setpgid
    except OSError:
        pass  # the child got there first (or is gone)
    os.close(write_fd)

    def clean_up() -> None:
        if box is not None:
            box.empty(pid)  # whatever the step left behind (grandchildren, setsid or not)
        else:
            _kill_group(pid, signal.SIGKILL)

    watch = _Watch()
    try:
        _watch(watch, pid, read_fd, request, on_progress, start, early=after is not None)
    finally:
        os.close(read_fd)
        if watch.exited or after is None:
            clean_up()
        else:
            after.extend((lambda: _reap(pid), clean_up))
    seconds = time.monotonic() - start
    if os.WIFSIGNALED(watch.status) and os.WTERMSIG(watch.status) == signal.SIGKILL:
        watch.oom = ooms is not None and (oom_kills() or 0) > ooms
    return _outcome(watch, request, seconds)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _watch(watch: _Watch, pid: int, read_fd: int, request: AttemptRequest,
           on_progress: ProgressFn, start: float, early: bool) -> None:
    """Collect the child's messages until it exits, passes its timeout or stalls; with
    ``early``, until its result is in and its end of the pipe closed (it exits next)."""
    pidfd = os.pidfd_open(pid)
    deadline = None if request.timeout is None else start + request.timeout
    buffer = b""
    os.set_blocking(read_fd, False)
    watched = [read_fd, pidfd]
    try:
        while True:
            now = time.monotonic()
            waits = [deadline - now] if deadline is not None else []
            if request.stall_after and request.stall_kill and watch.last_progress is not None:
                waits.append(watch.last_progress + request.stall_after - now)
            wait = max(0.0, min(waits)) if waits else None
            ready, _, _ = select.select(watched, [], [], wait)
            if read_fd in ready:
                buffer, open_ = _drain(read_fd, buffer, watch, on_progress)
                if not open_ and early and watch.messages and "result" in watch.messages[-1]:
                    return  # run() returned and its value is here: exit status 0 follows
                if not open_:  # the child closed its end: only its exit is left to wait for
                    watched = [pidfd]
            if pidfd in ready:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                watch.killed_for = FailureCause.TIMEOUT
            elif (request.stall_after and request.stall_kill and watch.last_progress is not None
                  and now - watch.last_progress >= request.stall_after):
                watch.killed_for = FailureCause.STALLED
            if watch.killed_for is not None:
                _kill_group(pid, signal.SIGTERM)
                if not select.select([pidfd], [], [], TERM_GRACE_SECONDS)[0]:
                    _kill_group(pid, signal.SIGKILL)
                break
        _, watch.status, rusage = os.wait4(pid, 0)
        watch.exited = True
        watch.peak_rss = rusage.ru_maxrss * 1024
        _drain(read_fd, buffer, watch, on_progress)
    finally:
        os.close(pidfd)


def _drain(fd: int, buffer: bytes, watch: _Watch, on_progress: ProgressFn
           ) -> tuple[bytes, bool]:
    """Read what the child wrote; returns the unfinished line and whether the pipe is open."""
    open_ = True
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            open_ = False
            break
        buffer += chunk
    *lines, buffer = buffer.split(b"\n")
    for line in lines:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "progress" in msg:
            watch.last_progress = time.monotonic()
            on_progress(msg["progress"], msg.get("message"))
        else:
            watch.messages.append(msg)
    return buffer, open_


def _outcome(watch: _Watch, request: AttemptRequest, seconds: float) -> AttemptOutcome:
    final = watch.messages[-1] if watch.messages else {}
    status = watch.status

    def failed(cause: FailureCause, detail: str, **facts: Any) -> AttemptOutcome:
        return AttemptOutcome(seconds, peak_rss=watch.peak_rss, failure=Failure(
            cause, detail, attempt=request.attempt, seconds=seconds, ended=time.time(),
            facts={k: v for k, v in facts.items() if v is not None}))

    if watch.killed_for is FailureCause.TIMEOUT:
        return failed(FailureCause.TIMEOUT, f"timed out after {request.timeout:g} s (its "
                      f"limit) and was killed", limit=request.timeout)
    if watch.killed_for is FailureCause.STALLED:
        return failed(FailureCause.STALLED, f"reported no progress for {request.stall_after:g}"
                      " s (stall_after) and was killed", limit=request.stall_after)
    exited_ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    if exited_ok and "result" in final:
        return AttemptOutcome(seconds, result=final["result"], peak_rss=watch.peak_rss,
                              warnings=final.get("warnings") or [])
    if exited_ok and "too_big" in final:
        return failed(FailureCause.INVALID_RESULT, f"run() returned {human_bytes(final['too_big'])}"
                      f" of JSON; a return value may be at most {human_bytes(RESULT_CAP)}: "
                      "write big results to a file in output_dir", size=final["too_big"])
    if "exception" in final:
        where = f" at {final['where']}" if final.get("where") else ""
        message = final["message"].splitlines()[0] if final["message"] else ""
        return failed(FailureCause.EXCEPTION,
                      f"{final['exception']}" + (f": {message}" if message else "") + where,
                      exception=final["exception"], where=final.get("where"))
    if "exit" in final:
        return failed(FailureCause.EXIT, f"run() called sys.exit({final['exit']})",
                      exit_code=final["exit"])
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal_name(sig)
        if sig in STOPPED_FROM_OUTSIDE:
            return failed(FailureCause.INTERRUPTED, f"stopped by {name} from outside",
                          signal=name)
        peak = f", peak {human_bytes(watch.peak_rss)}" if watch.peak_rss else ""
        if watch.oom:
            return failed(FailureCause.OOM, f"killed by the kernel's out-of-memory killer"
                          f"{peak}", signal=name, peak_rss=watch.peak_rss)
        likely = ", likely out of memory" if sig == signal.SIGKILL and (
            watch.peak_rss or 0) > LIKELY_OOM_BYTES else ""
        return failed(FailureCause.SIGNAL, f"killed ({name}){peak}{likely}", signal=name,
                      peak_rss=watch.peak_rss)
    code = os.waitstatus_to_exitcode(status)
    return failed(FailureCause.EXIT, f"the process exited with code {code} before run() "
                  "returned" + (" (os._exit?)" if code == 0 else ""), exit_code=code)
