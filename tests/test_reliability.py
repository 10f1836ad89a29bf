"""Reliability, round 2 (issue 16), at unit level with real forks and real files: the
ghost-runner race of item 2 made deterministic, and item 13's bytes read. The end-to-end
reproductions are in tests/e2e/test_reliability.py."""
from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path

import pytest

from orchestration import sandbox
from orchestration.config.loader import MAX_BYTES
from orchestration.containment import die_with_parent
from orchestration.fsutil import pid_alive
from orchestration.ready import Readier
from orchestration.sandbox import AttemptRequest
from orchestration.workspace import Workspace
from tests.conftest import wait_until


def read_to_end(fd: int, timeout: float = 10.0) -> bytes:
    """Everything written to the pipe ``fd`` until every writer has gone (EOF)."""
    data, deadline = b"", time.monotonic() + timeout
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while time.monotonic() < deadline:
            if select.select([pipe], [], [], deadline - time.monotonic())[0]:
                chunk = pipe.read(4096)
                if not chunk:
                    return data
                data += chunk
    pytest.fail(f"a writer of the pipe was still alive after {timeout} s; it wrote {data!r}")


def kill_and_reap(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def spawn_parent_of(child_body) -> int:
    """Fork a parent process (a worker, runner or code host) that forks a child running
    ``child_body(parent_pid_before_the_fork)``, then waits to be killed; returns once the
    child exists."""
    parent = os.fork()
    if parent == 0:
        try:
            me = os.getpid()
            if os.fork() == 0:
                try:
                    child_body(me)
                finally:
                    os._exit(0)
            time.sleep(60)  # killed by the test
        finally:
            os._exit(0)
    wait_until(lambda: children(parent), 10, "the child to be forked")
    return parent


def test_a_child_whose_parent_died_before_it_armed_the_death_signal_never_runs():
    """Item 2, the ghost-runner race: the parent is killed before its child armed
    PR_SET_PDEATHSIG. Reading ``getppid()`` after the fork would take the new parent (init)
    for the old one; the pid from before the fork tells the child it is an orphan."""
    go_r, go_w = os.pipe()
    report_r, report_w = os.pipe()

    def child(parent: int) -> None:
        os.read(go_r, 1)  # delayed until its parent is dead
        die_with_parent(parent)
        os.write(report_w, b"ran as a ghost")

    parent = spawn_parent_of(child)
    os.close(report_w)
    os.close(go_r)
    kill_and_reap(parent)
    os.write(go_w, b"x")
    os.close(go_w)
    assert read_to_end(report_r) == b""


def test_a_child_that_armed_the_death_signal_dies_with_its_parent():
    """Item 2: once armed, the kernel kills the child when its parent dies."""
    report_r, report_w = os.pipe()

    def child(parent: int) -> None:
        die_with_parent(parent)
        os.write(report_w, b"armed\n")
        time.sleep(30)
        os.write(report_w, b"outlived its parent")

    parent = spawn_parent_of(child)
    os.close(report_w)
    armed = os.read(report_r, 6)
    assert armed == b"armed\n"
    kill_and_reap(parent)
    assert read_to_end(report_r) == b""


def test_a_step_whose_code_host_died_before_it_armed_the_death_signal_never_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Item 2, the same race for a step: ``run_attempt`` forks the step from a code host
    that is killed while the step is delayed just before arming. The step must exit
    without running ``run()``."""
    go_r, go_w = os.pipe()
    arm = sandbox.die_with_parent

    def delayed(parent: int) -> None:  # the delay that makes the race certain
        os.read(go_r, 1)
        arm(parent)

    monkeypatch.setattr(sandbox, "die_with_parent", delayed)
    ran = tmp_path / "ran"
    host = os.fork()
    if host == 0:
        try:
            sandbox.run_attempt(lambda progress: ran.write_text("ghost"),
                                AttemptRequest(log=str(tmp_path / "log")),
                                lambda fraction, message: None)
        finally:
            os._exit(0)
    step = wait_until(lambda: children(host), 10, "the step to be forked")[0]
    kill_and_reap(host)
    os.write(go_w, b"x")
    wait_until(lambda: not pid_alive(step), 10, "the orphaned step to exit")
    assert not ran.exists()


def test_a_config_over_the_cap_is_judged_by_its_size_and_never_read(tmp_path: Path):
    """Item 13: a 600 MiB sparse file is refused after reading at most the cap (+1 byte),
    as the kernel counts what this process read."""
    ws = Workspace(tmp_path / "ws")
    ws.init()
    huge = ws.root / "ConfigSources" / "huge.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(600 * 1024 * 1024)

    def bytes_read() -> int:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return int(fields["rchar"])

    readier = Readier(ws)
    before = bytes_read()
    outcome = readier.prepare_file(huge)
    read = bytes_read() - before
    assert not outcome.queued and "file is 629145600 bytes" in outcome.message
    assert read <= MAX_BYTES + 64 * 1024, f"read {read} bytes of a refused file"
