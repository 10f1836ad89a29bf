"""A process that hosts one code folder: imports its Tasks.py once, then runs user code on
request, each call (a step attempt, or a ``validate()`` at ``ready``) in a fork of its own.

Why a process per folder: user code never runs in the worker, in ``ready`` or in a runner
that goes on to other experiments. An import that exits, segfaults or hangs costs only the
configs using that folder; two folders' modules, resolvers and globals never meet; and a
forked call starts from the imported module, so an import paid once serves every step of
an experiment (a torch import takes seconds). The host is lean (no Luigi), so forking a step
from it is cheap: it is started from a lean *zygote* by the slot runner (which has Luigi
loaded), or forked directly by ``ready`` and by Luigi entry points.

Protocol: one JSON object per line over a socket pair. The host says ``imported`` (or
``import_error``) once, then answers each ``call`` with ``progress`` lines and an
``outcome``. A host's stdout/stderr (prints at import) go to a log file, or to a pipe whose
last 64 KiB the client keeps (``ready`` must stay readable whatever Tasks.py prints).
"""
from __future__ import annotations

import collections
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from .containment import Box, die_with_parent, kill_group
from .exceptions import TasksImportError
from .failures import Failure, FailureCause, signal_name
from .sandbox import AttemptOutcome, AttemptRequest, ProgressFn, prepare_process, run_attempt
from .taskbase import TaskBase, prepare

OUTPUT_TAIL_BYTES = 64 * 1024
PROGRESS_EVERY = 0.1  # seconds between two progress messages a host forwards
IMPORT_TIMEOUT = 300.0  # a Tasks.py whose import takes longer is taken to hang


# --- messages ------------------------------------------------------------------------------
def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message, default=str).encode() + b"\n")


class _Channel:
    """The client's end: socket lines in, the host's printed output kept as a bounded tail."""

    def __init__(self, sock: socket.socket, output: int | None) -> None:
        self.sock, self.output = sock, output
        self.buffer = b""
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message; None when the host is gone; TimeoutError after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            fds = [self.sock] + ([self.output] if self.output is not None else [])
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(fds, [], [], wait)
            if not ready:
                raise TimeoutError
            if self.output is not None and self.output in ready:
                self._keep(os.read(self.output, 65536))
            if self.sock in ready:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return None
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def _keep(self, chunk: bytes) -> None:
        if not chunk:
            os.close(self.output)  # type: ignore[arg-type]
            self.output = None
            return
        self.tail.append(chunk)
        self.tail_size += len(chunk)
        while self.tail_size - len(self.tail[0]) >= OUTPUT_TAIL_BYTES:
            self.tail_size -= len(self.tail.popleft())

    def printed(self) -> str:
        """The last lines the host printed (stdout and stderr), for error messages."""
        if self.output is not None:
            while select.select([self.output], [], [], 0)[0] and self.output is not None:
                self._keep(os.read(self.output, 65536))
        text = b"".join(self.tail)[-OUTPUT_TAIL_BYTES:].decode(errors="replace")
        return text.strip()


# --- the host process ------------------------------------------------------------------------
def _close_fds_except(keep: set[int]) -> None:
    """A forked host holds nothing of its parent's: no lock (``ready.lock`` held by a daemon
    that Tasks.py forked at import would block every later ``ready``), no other host's socket."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _host_main(sock_fd: int, output_fd: int, folder: str, owner: int | None,
               parent: int) -> None:
    """Body of a host process; never returns."""
    code = 0
    try:
        die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        prepare_process()  # stdin from /dev/null: a Tasks.py that reads it cannot hang us
        os.chdir(folder)
        sock = socket.socket(fileno=sock_fd)
        box = Box.for_host(owner)
        from .config.tasks_module import import_tasks, task_classes

        before = set(sys.modules)
        try:
            module = import_tasks(Path(folder))
        except TasksImportError as exc:
            _send(sock, {"import_error": str(exc)})
            return
        classes = task_classes(module)
        _send(sock, {"imported": sorted(classes), "box": str(box.folder or ""),
                     "files": _stamps(sys.modules[name] for name in set(sys.modules) - before),
                     "others": sorted(k for k, v in vars(module).items()
                                      if isinstance(v, type) and k not in classes),
                     "validating": sorted(k for k, cls in classes.items()
                                          if cls.validate is not TaskBase.validate)})
        _serve(sock, classes, box, folder)
        box.close()
    except BaseException:  # noqa: BLE001 - a bug of ours: into the host's own output
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _stamps(modules: Iterable[ModuleType]) -> list[list[Any]]:
    """``[path, mtime_ns, size]`` of each module file an import loaded, but the installed
    ones (under the interpreter's prefixes: a change there needs a new worker anyway)."""
    installed = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    stamps = []
    for module in modules:
        path = getattr(module, "__file__", None)
        if not path or path.startswith(installed):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        stamps.append([path, st.st_mtime_ns, st.st_size])
    return stamps


def _serve(sock: socket.socket, classes: dict[str, type[TaskBase]], box: Box,
           folder: str) -> None:
    reader = sock.makefile("rb")
    for line in reader:
        call = json.loads(line)
        if call.get("op") != "call":
            return
        last = [0.0]

        def progress(fraction: float, message: str | None) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                _send(sock, {"progress": fraction, "message": message})

        request = AttemptRequest(**call["request"])
        request.code_folder = request.code_folder or folder
        target = _target(classes[call["method"]], call)
        after: list[Callable[[], None]] = []
        outcome = run_attempt(target, request, progress, box, after)
        _send(sock, {"outcome": outcome.to_json()})
        for job in after:  # the step's exit and leftovers, while the runner writes its marker
            job()


def _target(cls: type[TaskBase], call: dict[str, Any]) -> Callable[[ProgressFn], Any]:
    config, entry, output_dir = call["config"], call["entry"], Path(call["output_dir"])
    if call["kind"] == "validate":
        return lambda progress: run_validate(cls, config, entry, output_dir)
    return lambda progress: prepare(cls(config), config, entry, output_dir, progress).run()


def run_validate(cls: type[TaskBase], config: dict[str, Any], entry: dict[str, Any],
                 output_dir: Path) -> list[str]:
    """A task's own ``validate()``: it may return problems or raise; both reject the config."""
    try:
        instance = prepare(cls(config), config, entry, output_dir)
        result = instance.validate()
    except Exception as exc:  # user code: any exception is a rejection, not a crash
        return [f"{cls.__name__}.validate() raised {type(exc).__name__}: {exc}"]
    if result is None or result is True:
        return []
    if result is False:
        return [f"{cls.__name__}.validate() returned False"]
    if isinstance(result, str):
        return [result]
    return [str(p) for p in result]


# --- the zygote ------------------------------------------------------------------------------
class Zygote:
    """A lean process whose only job is to fork code hosts, so that a process with Luigi
    loaded (the slot runner) can have hosts, and therefore steps, forked cheaply: a fork and
    its exit cost in proportion to the forking process's memory map (CPU time measured here:
    1.0 ms from a fresh interpreter, 2.2 ms from one that imported our worker's modules,
    3.0 ms with Luigi too). So it is a fresh interpreter that imports this module only,
    started once per runner (about 60 ms)."""

    def __init__(self, process: subprocess.Popen, control: socket.socket) -> None:
        self.process, self.control = process, control

    @classmethod
    def start(cls) -> "Zygote":
        ours, theirs = socket.socketpair()
        code = "import sys; from orchestration.codehost import zygote_main; zygote_main()"
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", code, str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        return cls(process, ours)

    def spawn(self, host_end: socket.socket, output_fd: int, folder: str,
              owner: int | None) -> int:
        socket.send_fds(self.control, [json.dumps({"folder": folder, "owner": owner})
                                       .encode()], [host_end.fileno(), output_fd])
        reply = self.control.recv(64)
        if not reply:
            raise OSError("the zygote process is gone")
        return int(reply)

    def close(self) -> None:
        self.control.close()
        self.process.wait()


def zygote_main() -> None:
    """Body of the zygote (``python -c`` with the control socket's fd and the parent's pid)."""
    control = socket.socket(fileno=int(sys.argv[1]))
    try:
        _zygote_serve(control, int(sys.argv[2]))
    finally:
        os._exit(0)


def _zygote_serve(control: socket.socket, parent: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # hosts are reaped by the kernel
    me = os.getpid()
    while True:
        message, fds, _, _ = socket.recv_fds(control, 4096, 2)
        if not message:
            return
        ask = json.loads(message)
        host_fd, output_fd = fds
        pid = os.fork()
        if pid == 0:
            _close_fds_except({host_fd, output_fd})
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _host_main(host_fd, output_fd, ask["folder"], ask["owner"], me)
        os.close(host_fd)
        os.close(output_fd)
        control.sendall(str(pid).encode())


# --- the client ------------------------------------------------------------------------------
class CodeHost:
    """Our handle on one host process (see the module doc)."""

    def __init__(self, pid: int, channel: _Channel, folder: Path, direct: bool) -> None:
        self.pid, self.channel, self.folder, self.direct = pid, channel, folder, direct
        self.dead = False  # closed, or killed after it stopped answering
        self.classes: list[str] = []       # TaskBase subclasses of its Tasks.py
        self.others: list[str] = []        # its other classes (for error messages)
        self.validating: list[str] = []    # the subclasses with a validate() of their own
        self.box: Path | None = None
        self.files: list[list[Any]] = []   # [path, mtime_ns, size] of the code it imported

    @classmethod
    def start(cls, folder: Path, owner: int | None = None, output: Path | None = None,
              zygote: Zygote | None = None,
              import_timeout: float = IMPORT_TIMEOUT) -> "CodeHost":
        """Start a host for ``folder`` and wait for its import; raises TasksImportError.

        ``owner``: the pid whose death means this host's steps must go (the worker);
        ``output``: the file its prints go to, else a pipe whose tail we keep."""
        ours, theirs = socket.socketpair()
        if output is not None:
            read_end, write_end = None, os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                                0o644)
        else:
            read_end, write_end = os.pipe()
        try:
            if zygote is not None:
                pid = zygote.spawn(theirs, write_end, str(folder), owner)
            else:
                parent = os.getpid()
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _close_fds_except({theirs.fileno(), write_end})
                    _host_main(theirs.fileno(), write_end, str(folder), owner, parent)
        finally:
            theirs.close()
            os.close(write_end)
        host = cls(pid, _Channel(ours, read_end), folder, direct=zygote is None)
        host._await_import(import_timeout)
        return host

    def _await_import(self, timeout: float) -> None:
        path = self.folder / "Tasks.py"
        try:
            first = self.channel.recv(timeout)
        except TimeoutError:
            self.kill()
            raise TasksImportError(self._with_output(
                f"importing {path} did not finish within {timeout:g} s")) from None
        if first is None or "imported" not in first:
            how = self._how_it_ended() if first is None else ""
            self.kill()
            if first is not None and "import_error" in first:
                raise TasksImportError(self._with_output(first["import_error"]))
            raise TasksImportError(self._with_output(f"importing {path} ended its process "
                                                     f"({how})"))
        self.classes, self.others = first["imported"], first.get("others", [])
        self.validating = first.get("validating", [])
        self.box = Path(first["box"]) if first.get("box") else None
        self.files = first.get("files", [])

    def unchanged(self) -> bool:
        """Whether every file of the code it imported is as it was then (so a new import
        would give the same modules)."""
        for path, mtime_ns, size in self.files:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if st.st_mtime_ns != mtime_ns or st.st_size != size:
                return False
        return True

    def _how_it_ended(self) -> str:
        """How a host that stopped answering ended (known for our own children only)."""
        if self.direct:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return "it ended"
            self.direct = False  # reaped
            if os.WIFSIGNALED(status):
                return f"killed by {signal_name(os.WTERMSIG(status))}"
            return f"it exited with code {os.waitstatus_to_exitcode(status)}"
        return "it exited, or was killed or crashed"

    def _with_output(self, message: str) -> str:
        printed = self.channel.printed().splitlines()[-3:]
        return message + (f"; its last output: {' | '.join(printed)}" if printed else "")

    def call(self, kind: str, method: str, config: dict[str, Any], entry: dict[str, Any],
             output_dir: Path, request: AttemptRequest,
             on_progress: ProgressFn = lambda fraction, message: None,
             still_running: tuple[float, Callable[[], None]] | None = None) -> AttemptOutcome:
        """Run ``method``'s ``run()`` (kind ``run``) or ``validate()`` (kind ``validate``) in a
        fork of the host; however it ends, an outcome. ``still_running``: (seconds, callback)
        called once if the attempt runs that long."""
        patience = still_running[0] if still_running else None
        try:
            _send(self.channel.sock, {"op": "call", "kind": kind, "method": method,
                                      "config": config, "entry": entry,
                                      "output_dir": str(output_dir),
                                      "request": request.__dict__})
            while True:
                try:
                    message = self.channel.recv(patience)
                except TimeoutError:
                    still_running[1]()  # type: ignore[index]
                    patience = None
                    continue
                if message is None:
                    break
                if "progress" in message:
                    on_progress(message["progress"], message.get("message"))
                elif "outcome" in message:
                    return AttemptOutcome.from_json(message["outcome"])
        except OSError:
            pass
        self.kill()
        return AttemptOutcome(0.0, failure=Failure(
            FailureCause.SIGNAL, "the process hosting the step's code died (killed from "
            "outside, or out of memory)", attempt=request.attempt, ended=time.time()))

    def close(self) -> None:
        """Let the host go: it empties its box and exits."""
        try:
            _send(self.channel.sock, {"op": "close"})
        except OSError:
            pass
        self._finish()

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.box is not None:
            kill_group(self.box)
        self._finish()

    def _finish(self) -> None:
        self.dead = True
        self.channel.sock.close()
        if self.channel.output is not None:
            os.close(self.channel.output)
            self.channel.output = None
        if self.direct:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
