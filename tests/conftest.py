"""Shared fixtures: a real git repository holding test Tasks.py, a workspace, and a runner for
the installed CLI in a subprocess (what a user types)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Tests send SIGINT as a terminal's Ctrl-C would. A suite started in the background of
    a non-interactive shell (``.ci/run &``, nohup) has SIGINT ignored, and every program it
    starts would inherit that and never see the Ctrl-C: handle it, so children get the
    default back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture
def code_repo(tmp_path: Path) -> Path:
    """A committed git repository whose ``tasks/`` folder holds the test Tasks.py."""
    return make_code_repo(tmp_path / "project")


def make_code_repo(repo: Path) -> Path:
    """Create ``repo`` as in the ``code_repo`` fixture (for module-scoped fixtures too)."""
    (repo / "tasks").mkdir(parents=True)
    shutil.copy(FIXTURES / "Tasks.py", repo / "tasks" / "Tasks.py")
    return commit_repo(repo)


def commit_repo(repo: Path) -> Path:
    """Make the folder ``repo`` a git repository with everything in it committed."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://github.com/me/project")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def tasks_dir(code_repo: Path) -> Path:
    return code_repo / "tasks"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """An initialised workspace folder."""
    from orchestration.workspace import Workspace

    root = tmp_path / "ws"
    Workspace(root).init()
    return root


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


def read_ledger(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def make_config(tasks_dir: Path, output_dir: str, tasks: list[dict], **extra) -> dict:
    return {"githubRepository": "https://github.com/me/project", "pathToTasks": str(tasks_dir),
            "outputDir": output_dir, "tasks": tasks, **extra}


def write_config(ws: Path, name: str, config: dict | str | bytes,
                 folder: str = "ConfigSources") -> Path:
    """Write a config (a dict, raw YAML text, or raw bytes) into a workspace folder."""
    path = ws / folder / f"{name}.yaml"
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(textwrap.dedent(config) if isinstance(config, str)
                        else yaml.safe_dump(config, sort_keys=False))
    old = path.stat().st_mtime - 10  # not "possibly half-written"
    os.utime(path, (old, old))
    return path


def run_cli(*args: str, ws: Path | None = None, cwd: Path | None = None,
            env: dict | None = None, timeout: float = 120,
            module: str = "orchestration") -> subprocess.CompletedProcess:
    """``python -m orchestration ARGS`` (or another ``module``) in a subprocess, as a user runs
    it; stdin is empty, so a command that asks something on a terminal never waits."""
    full_env = {**os.environ, **(env or {})}
    if ws is not None:
        full_env["JOB_ORCHESTRATION_WORKSPACE"] = str(ws)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def state_of(ws: Path, name: str) -> str:
    """The folder a config is in (exactly one, asserted)."""
    found = [folder.name for folder in ws.iterdir()
             if folder.name.startswith("Config") and (folder / f"{name}.yaml").exists()]
    assert len(found) == 1, f"{name} is in {found}"
    return found[0]


def wait_until(predicate, timeout: float = 30, what: str = "condition", every: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned) or fail at the deadline:
    synchronisation by observation, never by sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@contextmanager
def scheduler_cli(ws: Path, port: int | None = None):
    """``job-orchestration scheduler`` (the real CLI, a subprocess) for ``ws`` on 127.0.0.1
    and a free port; yields ``(url, process)``. At the end it gets SIGTERM (it saves its
    state then); its output is left in ``process.out`` and ``process.err``."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "orchestration", "scheduler", "--port",
                             str(port)], env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 30, "the scheduler")
        assert proc.poll() is None, proc.communicate()
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.out, proc.err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.out, proc.err = proc.communicate()


@pytest.fixture
def luigid(tmp_path: Path):
    """A real ``luigid`` on 127.0.0.1 and a free port, state and logs under tmp_path;
    yields its URL, kills it at teardown."""
    port = free_port()
    folder = tmp_path / "luigid"
    (folder / "logs").mkdir(parents=True)
    binary = Path(sys.executable).with_name("luigid")
    proc = subprocess.Popen([str(binary) if binary.exists() else "luigid", "--address",
                             "127.0.0.1", "--port", str(port), "--state-path",
                             str(folder / "state.pickle"), "--logdir", str(folder / "logs")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 30, "luigid to listen")
        assert proc.poll() is None, f"luigid exited with {proc.returncode}"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
