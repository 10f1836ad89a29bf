"""Running steps, through the installed CLI and Luigi's own: crashes, timeouts, retries, logs,
DAGs, resources and the ``luigi --module orchestration.pipeline`` entry points."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from orchestration.fsutil import pid_alive
from tests.conftest import make_config, read_ledger, run_cli, state_of, write_config

BIN = Path(sys.executable).parent
WORKER_TIMEOUT = 60  # a hung worker fails the test instead of hanging it


def steps(*methods: str, **options: dict) -> list[dict]:
    """A chain of tasks ``s0, s1, ...`` running ``methods``; ``options["s1"]`` adds fields."""
    return [{"id": f"s{i}", "method": m, **options.get(f"s{i}", {})}
            for i, m in enumerate(methods)]


def queue(ws: Path, tasks_dir: Path, ledger: Path, experiments: dict[str, list[dict]],
          **extra: object) -> None:
    """Write one config per experiment (its name is also its outputDir) and ready them all."""
    for name, tasks in experiments.items():
        write_config(ws, name, make_config(tasks_dir, name, tasks, ledger=str(ledger), **extra))
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 0, ready.stderr


def work(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("worker", "--exit-when-empty", *args, ws=ws, timeout=WORKER_TIMEOUT)


def luigi_command(ws: Path, *args: str, workspace_param: bool = False
                  ) -> tuple[list[str], dict[str, str]]:
    """Argv and environment of ``luigi --module orchestration.pipeline ARGS
    --local-scheduler``, the workspace given by the environment or by ``--workspace``."""
    env = {k: v for k, v in os.environ.items() if k != "JOB_ORCHESTRATION_WORKSPACE"}
    if workspace_param:
        args = (*args, "--workspace", str(ws))
    else:
        env["JOB_ORCHESTRATION_WORKSPACE"] = str(ws)
    return [str(BIN / "luigi"), "--module", "orchestration.pipeline", *args,
            "--local-scheduler"], env


def luigi_cli(ws: Path, cwd: Path, *args: str, workspace_param: bool = False
              ) -> subprocess.CompletedProcess:
    argv, env = luigi_command(ws, *args, workspace_param=workspace_param)
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT)


def ran(ledger: Path, name: str) -> list[str]:
    """The steps of experiment ``name`` that executed, in order, once per execution."""
    return [line.split(":", 1)[1] for line in read_ledger(ledger)
            if line.startswith(f"{name}:")]


def show(ws: Path, name: str) -> dict:
    return json.loads(run_cli("show", name, "--json", ws=ws).stdout)


def error_text(ws: Path, name: str) -> str:
    return (ws / "ConfigsFailed" / f"{name}.error.txt").read_text()


def wait_until_dead(pid: int, deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while pid_alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


CRASHES = [
    # experiment, its middle step's method, what its error file says, what else its log holds
    ("sigkill", "SelfKill", "killed (SIGKILL)", ""),
    ("exit-zero", "ExitZero", "exited with code 0 before run() returned", ""),
    ("exit-three", "ExitCode", "exited with code 3 before run() returned", ""),
    ("segfault", "Segfault", "killed (SIGSEGV)", "Fatal Python error: Segmentation fault"),
    ("raises", "Fail", "ValueError: deliberate failure", "Traceback (most recent call last)"),
]
HEALTHY = ["healthy-a", "healthy-b"]


def test_a_crashing_step_fails_only_its_own_experiment(ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger,
          {**{name: steps("Ledger", method, "Ledger") for name, method, *_ in CRASHES},
           **{name: steps("Ledger", "Ledger", "Ledger") for name in HEALTHY}})
    result = work(ws)
    assert result.returncode == 1, result.stderr
    for name, method, words, logged in CRASHES:
        assert state_of(ws, name) == "ConfigsFailed"
        error = error_text(ws, name)
        log = ws / "Output" / name / "logs" / "s1.log"
        assert f"step 's1' ({method})" in error and words in error, error
        assert f"log: {log}" in error
        text = log.read_text()  # the log says it too, after what the step wrote
        assert "attempt 1 of 1 failed: " in text and words in text and logged in text, text
        assert ran(ledger, name) == ["s0", "s1"]  # the step after the crash never ran
        assert not (ws / "Output" / name / ".orchestration" / "s1.done.json").exists()
    for name in HEALTHY:
        assert state_of(ws, name) == "ConfigsCompleted"
        assert ran(ledger, name) == ["s0", "s1", "s2"]
    assert f"{len(CRASHES)} experiment(s) failed" in result.stderr


def test_a_finished_step_never_fails_for_its_return_value(ws, tasks_dir, ledger):
    """What ML users return (numpy scalars and arrays, paths, tuples...) is kept as JSON;
    anything else as its repr, with a warning in the log: hours of work are never lost."""
    queue(ws, tasks_dir, ledger, {"odd": steps("Unserialisable", "NumpyLike")})
    result = work(ws)
    assert result.returncode == 0, result.stdout + result.stderr
    tasks = {t["id"]: t for t in show(ws, "odd")["tasks"]}
    assert tasks["s0"]["state"] == tasks["s1"]["state"] == "completed"
    assert tasks["s0"]["result"]["model"].startswith("<object object at")
    assert "warning: the return value holds a object" in (ws / "Output" / "odd" / "logs" /
                                                          "s0.log").read_text()
    assert tasks["s1"]["result"] == {"acc": 0.93, "confusion": [[1, 0], [0, 1]],
                                     "where": "/tmp/model.pt", "pair": [1, 2]}


@pytest.mark.parametrize("method", ["Sleep", "Grandchild"])
def test_a_step_past_its_timeout_is_killed_with_what_it_started(ws, tasks_dir, ledger,
                                                                 tmp_path, method):
    pid_file = tmp_path / "pid"  # Sleep writes its own pid, Grandchild the grandchild's
    queue(ws, tasks_dir, ledger, {"slow": steps(method, "Ledger", s0={
        "timeout": 1, "sleep": 60, "started_flag": str(pid_file), "pid_file": str(pid_file)})})
    started = time.monotonic()
    result = work(ws)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert state_of(ws, "slow") == "ConfigsFailed"
    assert "timed out after 1 s" in error_text(ws, "slow")
    assert ran(ledger, "slow") == ["s0"]
    assert wait_until_dead(int(pid_file.read_text()))


@pytest.mark.parametrize("method, retries, state, attempts", [
    ("Flaky", 1, "ConfigsCompleted", 2),
    ("Fail", 2, "ConfigsFailed", 3),
])
def test_retries_rerun_a_failing_step_a_bounded_number_of_times(ws, tasks_dir, ledger, method,
                                                                retries, state, attempts):
    queue(ws, tasks_dir, ledger, {"retried": steps(method, s0={"retries": retries})})
    result = work(ws)
    assert result.returncode == (0 if state == "ConfigsCompleted" else 1)
    assert state_of(ws, "retried") == state
    assert ran(ledger, "retried") == ["s0"] * attempts
    assert show(ws, "retried")["tasks"][0]["attempts"] == attempts
    if state == "ConfigsFailed":
        assert f"failed after {attempts} attempt(s)" in error_text(ws, "retried")


def test_logs_keep_what_a_crashing_step_printed(ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger, {"noisy": steps("Ledger", "Noisy", "Ledger")})
    assert work(ws).returncode == 1
    noisy = ["noisy stdout", "noisy stderr", "WARNING user.module: noisy logging",
             "Traceback (most recent call last)", "KeyError: 'noisy failure'"]
    log = (ws / "Output" / "noisy" / "logs" / "s1.log").read_text()
    assert all(words in log for words in noisy), log
    # the traceback starts at the user's code, not at ours that called it
    assert 'Tasks.py", line' in log and "sandbox.py" not in log and "codehost.py" not in log

    one = run_cli("logs", "noisy", "s1", ws=ws)
    assert one.returncode == 0 and one.stdout == log

    every = run_cli("logs", "noisy", ws=ws).stdout
    in_order = ["==> s0", "stdout of s0", "==> s1", *noisy, "==> s2", "(not run yet)"]
    positions = [every.find(words) for words in in_order]
    assert -1 not in positions and positions == sorted(positions), every

    unknown = run_cli("logs", "noisy", "nope", ws=ws)
    assert unknown.returncode == 2
    assert "error: noisy has no step 'nope'; its steps: s0, s1, s2" in unknown.stderr


@pytest.mark.parametrize("command, workspace_param, runs", [
    (["Experiment", "--name", "exp-a"], False, ["exp-a"]),
    (["Queue"], False, ["exp-a", "exp-b"]),
    (["Queue", "--workers", "2"], True, ["exp-a", "exp-b"]),
], ids=["experiment", "queue", "queue-2-workers-workspace-param"])
def test_luigi_entry_points_run_readied_experiments_once(ws, tasks_dir, ledger, tmp_path,
                                                         command, workspace_param, runs):
    queue(ws, tasks_dir, ledger, {name: steps("Ledger", "Ledger", "Ledger")
                                  for name in ("exp-a", "exp-b")})

    def luigi_run() -> None:
        result = luigi_cli(ws, tmp_path, *command, workspace_param=workspace_param)
        assert result.returncode == 0, result.stderr

    luigi_run()
    for name in ("exp-a", "exp-b"):
        assert state_of(ws, name) == ("ConfigsCompleted" if name in runs else "ConfigsToRun")
        assert ran(ledger, name) == (["s0", "s1", "s2"] if name in runs else [])
    executed = read_ledger(ledger)
    luigi_run()  # again: everything it covers is complete, nothing executes
    assert read_ledger(ledger) == executed
    assert work(ws).returncode == 0  # the worker runs only what Luigi left queued
    for name in ("exp-a", "exp-b"):
        assert state_of(ws, name) == "ConfigsCompleted"
        assert ran(ledger, name) == ["s0", "s1", "s2"]


def test_a_worker_leaves_alone_what_a_luigi_run_is_running(ws, tasks_dir, ledger, tmp_path):
    """Under ``--workers 2`` Luigi runs each step in a child that ends with the step: the claim
    must still follow the Luigi run, or a worker would take the experiment over."""
    started = tmp_path / "started"
    queue(ws, tasks_dir, ledger, {"long": steps(
        "Ledger", "Sleep", "Ledger", s1={"sleep": 3, "started_flag": str(started)})})
    argv, env = luigi_command(ws, "Queue", "--workers", "2")
    luigi_run = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not started.exists():  # s0's process has come and gone; s1 is running
            assert luigi_run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert work(ws).returncode == 0
        assert luigi_run.wait(timeout=WORKER_TIMEOUT) == 0, luigi_run.stderr.read()
    finally:
        if luigi_run.poll() is None:
            luigi_run.kill()
            luigi_run.wait()
        luigi_run.stderr.close()
    assert state_of(ws, "long") == "ConfigsCompleted"
    assert ran(ledger, "long") == ["s0", "s1", "s2"]


RUNNERS = {  # steps one at a time, and two at once in two processes
    "worker": lambda ws, cwd: work(ws),
    "luigi-2-workers": lambda ws, cwd: luigi_cli(ws, cwd, "Queue", "--workers", "2"),
}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("tasks", [
    [{"id": "left", "requires": []}, {"id": "right", "requires": []},
     {"id": "join", "requires": ["left", "right"]}],
    [{"id": "top"}, {"id": "left", "requires": ["top"]}, {"id": "right", "requires": ["top"]},
     {"id": "bottom", "requires": ["left", "right"]}],
], ids=["two-roots-and-a-join", "diamond"])
def test_a_dag_runs_each_step_once_after_what_it_requires(ws, tasks_dir, ledger, tmp_path,
                                                          tasks, runner):
    queue(ws, tasks_dir, ledger, {"dag": [{**t, "method": "Ledger"} for t in tasks]})
    result = RUNNERS[runner](ws, tmp_path)
    assert result.returncode == 0, result.stderr
    assert state_of(ws, "dag") == "ConfigsCompleted"
    order = ran(ledger, "dag")
    assert sorted(order) == sorted(t["id"] for t in tasks)
    for t in tasks:
        for dep in t.get("requires", []):
            assert order.index(dep) < order.index(t["id"]), order
    assert [t["state"] for t in show(ws, "dag")["tasks"]] == ["completed"] * len(tasks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[str]:
    """A real luigid on 127.0.0.1 whose ``[resources]`` allow one licence; yields its URL."""
    config = tmp_path / "luigid.cfg"
    config.write_text("[resources]\nlicence = 1\n")
    port = _free_port()
    with open(tmp_path / "luigid.log", "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "luigid"), "--port", str(port), "--address", "127.0.0.1",
             "--state-path", str(tmp_path / "luigid-state.pickle")],
            env={**os.environ, "LUIGI_CONFIG_PATH": str(config)}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "luigid.log").read_text()
                assert time.monotonic() < deadline, "luigid did not start listening"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_resource_limit_holds_across_a_workers_experiments_through_luigid(
        ws, tasks_dir, ledger, tmp_path, luigid):
    """With the local scheduler each runner has its own scheduler, so only luigid can keep
    two experiments' steps that need the one licence apart."""
    intervals = tmp_path / "intervals"
    queue(ws, tasks_dir, ledger, {name: steps("Interval", s0={"resources": {"licence": 1}})
                                  for name in ("gpu-a", "gpu-b")}, intervals=str(intervals))
    result = work(ws, "--workers", "2", "--scheduler-url", luigid)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [state_of(ws, n) for n in ("gpu-a", "gpu-b")] == ["ConfigsCompleted"] * 2
    first, second = sorted(tuple(map(float, line.split()))
                           for line in intervals.read_text().splitlines())
    assert first[1] <= second[0], f"the licensed steps overlapped: {first} {second}"


def test_a_config_the_worker_cannot_run_fails_alone(ws, tasks_dir, ledger):
    """A config copied into the queue by hand (never readied), and one wanting more of a
    resource than a local scheduler has, each fail on their own; the worker goes on."""
    one = [{"id": "s0", "method": "Ledger"}]
    write_config(ws, "by-hand", make_config(tasks_dir, "by-hand", one, ledger=str(ledger)),
                 folder="ConfigsToRun")
    write_config(ws, "greedy", make_config(tasks_dir, "greedy",
                                           [{"id": "s0", "method": "Ledger",
                                             "resources": {"gpu": 2}}], ledger=str(ledger)))
    write_config(ws, "fine", make_config(tasks_dir, "fine", one, ledger=str(ledger)))
    assert run_cli("ready", ws=ws).returncode == 0
    work = run_cli("worker", "--exit-when-empty", ws=ws, timeout=60)
    assert work.returncode == 1, work.stderr
    assert "Traceback" not in work.stderr
    assert state_of(ws, "fine") == "ConfigsCompleted"
    assert state_of(ws, "by-hand") == state_of(ws, "greedy") == "ConfigsFailed"
    assert "run `job-orchestration ready`" in (ws / "ConfigsFailed" / "by-hand.error.txt").read_text()
    assert read_ledger(ledger) == ["fine:s0"]
    greedy = json.loads(run_cli("show", "greedy", "--json", ws=ws).stdout)
    assert greedy["state"] == "failed" and greedy["tasks"][0]["state"] != "running"
