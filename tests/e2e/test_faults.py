"""Fault injection with real processes and real signals: kill -9 of the worker mid-step, while
a marker or the run record is written, and before the final move; a step SIGKILLed on every
attempt; luigid absent or killed; a full disk; several workers racing for one queue. Every
config ends in exactly one folder, no finished step runs again, nothing half-written stays.

Precise kill points come from ``fault_driver.py``, which runs the worker with a patch that
SIGKILLs it at that point (see there); the package has no fault hooks.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest
from packaging.requirements import Requirement

from orchestration import claims
from orchestration.fsutil import TMP_MARK, pid_alive
from orchestration.lifecycle import reconcile
from orchestration.workspace import Workspace
from tests.conftest import free_port, port_open, read_ledger, run_cli, state_of, wait_until
from tests.e2e.test_execution import (WORKER_TIMEOUT, error_text, queue, ran, show, steps,
                                      work)

DRIVER = Path(__file__).with_name("fault_driver.py")
ROOT = Path(__file__).parents[2]
LEFTOVER_MARKS = (TMP_MARK, "-luigi-tmp-", ".owner.json.reap-")  # half-done writes and reaps


def leftovers(ws: Path) -> list[Path]:
    """Temp and partial files anywhere in the workspace."""
    return [p for p in ws.rglob("*") if any(mark in p.name for mark in LEFTOVER_MARKS)]


def background(ws: Path, log: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``job-orchestration ARGS`` in the background, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "orchestration", *args],
                                env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws),
                                     **(env or {})}, stdout=out, stderr=subprocess.STDOUT)


def drive(ws: Path, fault: str, arg: str, *worker_args: str) -> subprocess.CompletedProcess:
    """``worker --exit-when-empty`` with one fault injected by the driver."""
    return subprocess.run([sys.executable, str(DRIVER), fault, arg, "--exit-when-empty",
                           *worker_args], env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE":
                                               str(ws)}, capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT)


def record(ws: Path, name: str) -> dict:
    return json.loads((ws / "Output" / name / "run.json").read_text())


def marker(ws: Path, name: str, task_id: str) -> Path:
    return ws / "Output" / name / ".orchestration" / f"{task_id}.done.json"


def started_pid(flag: Path) -> int:
    """The pid a step wrote into its ``started_flag`` once it runs."""
    return wait_until(lambda: flag.exists() and flag.read_text() and int(flag.read_text()),
                      WORKER_TIMEOUT, f"a step to write {flag}")


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def held(ws: Path, tasks_dir: Path, ledger: Path, tmp_path: Path, name: str) -> dict:
    """Queue ``name``: s0, then s1 that waits for ``go_flag``, then s2. Returns the flags."""
    flags = {"started_flag": str(tmp_path / "started"), "go_flag": str(tmp_path / "go")}
    queue(ws, tasks_dir, ledger, {name: steps("Ledger", "WaitForFlag", "Ledger")}, **flags)
    return flags


def assert_finished_cleanly(ws: Path, name: str) -> None:
    assert state_of(ws, name) == "ConfigsCompleted"
    assert {t["state"] for t in show(ws, name)["tasks"]} == {"completed"}
    assert leftovers(ws) == []
    assert not list((ws / "ConfigsInProgress").iterdir())  # no owner file either


@pytest.mark.slow
def test_a_worker_killed_mid_step_takes_its_step_along_and_the_next_worker_finishes(
        ws, tasks_dir, ledger, tmp_path):
    flags = held(ws, tasks_dir, ledger, tmp_path, "held")
    worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty")
    try:
        step = psutil.Process(started_pid(Path(flags["started_flag"])))
        chain = step.parents()  # step <- code host <- zygote <- runner <- worker
        assert [p.pid for p in chain[:4]][-1] == worker.pid
        runner = chain[2]
    finally:
        worker.kill()
        worker.wait()
    wait_until(lambda: not pid_alive(runner.pid) and not pid_alive(step.pid), 10,
               "the runner and the step to die with their worker")
    assert state_of(ws, "held") == "ConfigsInProgress"
    assert claims.read_owner(claims.owner_file(Workspace(ws), "held")).pid == worker.pid

    Path(flags["go_flag"]).touch()
    again = work(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "held: its worker died; queued again (finished steps are kept)" in again.stdout
    assert ran(ledger, "held") == ["s0", "s1", "s1", "s2"]  # only the step cut short again
    assert_finished_cleanly(ws, "held")


TORN_WRITES = [
    # the file being written when the worker is killed, the folder of its temp file, and
    # which steps executed in all: a lost marker runs its step again, a lost record does not
    ("s0.done.json", ".orchestration", ["s0", "s0", "s1"]),
    ('run.json:"state": "completed"', ".", ["s0", "s1"]),
]


@pytest.mark.parametrize("target, folder, executions", TORN_WRITES, ids=["marker", "record"])
def test_a_kill_while_a_marker_or_the_record_is_written_loses_nothing(
        ws, tasks_dir, ledger, target, folder, executions):
    queue(ws, tasks_dir, ledger, {"torn": steps("Ledger", "Ledger")})
    killed = drive(ws, "kill-writing", target)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert state_of(ws, "torn") == "ConfigsInProgress"
    name = target.split(":")[0]
    temp = list((ws / "Output" / "torn" / folder).glob(f"{TMP_MARK}*{name}"))
    assert len(temp) == 1, "the kill did not land between the write and the rename"
    assert marker(ws, "torn", "s0").exists() == (name == "run.json")  # never half a marker

    again = work(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert ran(ledger, "torn") == executions
    assert_finished_cleanly(ws, "torn")  # the next worker removed the temp file


def test_a_kill_between_the_last_step_and_the_final_move_is_reconciled_without_rerunning(
        ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger, {"almost": steps("Ledger", "Ledger")})
    killed = drive(ws, "kill-finishing", "ConfigsCompleted")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert state_of(ws, "almost") == "ConfigsInProgress"
    assert record(ws, "almost")["state"] == "completed"

    again = work(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "almost: had completed; moved to ConfigsCompleted" in again.stdout
    assert ran(ledger, "almost") == ["s0", "s1"]
    assert_finished_cleanly(ws, "almost")


def test_a_step_sigkilled_on_every_attempt_fails_after_its_retries(ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger, {"doomed": steps("SelfKill", "Ledger", s0={"retries": 2})})
    result = work(ws)
    assert result.returncode == 1
    assert state_of(ws, "doomed") == "ConfigsFailed"
    assert ran(ledger, "doomed") == ["s0"] * 3
    error = error_text(ws, "doomed")
    assert "failed after 3 attempt(s)" in error and "killed (SIGKILL)" in error, error


def test_no_luigid_at_start_is_a_clear_error_and_nothing_leaves_the_queue(
        ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger, {"waiting": steps("Ledger")})
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = work(ws, "--scheduler-url", url)
    assert result.returncode == 2
    assert f"error: cannot reach the Luigi scheduler at {url}" in result.stderr
    assert "Traceback" not in result.stderr
    assert state_of(ws, "waiting") == "ConfigsToRun"
    assert show(ws, "waiting")["state"] == "queued"
    assert ran(ledger, "waiting") == []


@pytest.mark.slow
def test_luigid_killed_mid_step_keeps_the_step_and_puts_the_experiment_back(
        ws, tasks_dir, ledger, tmp_path):
    """Decided: the running step finishes and keeps its marker; the experiment goes back to
    the queue and the worker stops with an error (without luigid it cannot keep the resource
    limits others rely on); the next worker resumes at the following step."""
    flags = held(ws, tasks_dir, ledger, tmp_path, "orphan")
    port = free_port()
    luigid = background(ws, tmp_path / "luigid.log", "scheduler", "--port", str(port))
    luigi_cfg = tmp_path / "luigi.cfg"  # give up on a dead luigid at once, not after a minute
    luigi_cfg.write_text("[core]\nrpc-retry-attempts = 1\n")
    try:
        wait_until(lambda: port_open(port) or luigid.poll() is not None, 30, "luigid")
        worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty",
                            "--scheduler-url", f"http://127.0.0.1:{port}",
                            env={"LUIGI_CONFIG_PATH": str(luigi_cfg)})
        started_pid(Path(flags["started_flag"]))
    finally:
        luigid.kill()
        luigid.wait()
    Path(flags["go_flag"]).touch()
    code = worker.wait(WORKER_TIMEOUT)
    log = (tmp_path / "worker.log").read_text()
    assert code == 2, log
    assert "orphan: put back in the queue: the Luigi scheduler could not be reached" in log
    assert f"error: cannot reach the Luigi scheduler at http://127.0.0.1:{port}" in log
    assert "runner for orphan crashed" not in log
    assert state_of(ws, "orphan") == "ConfigsToRun"
    assert marker(ws, "orphan", "s1").exists()  # the step that ran meanwhile is kept
    assert [t["state"] for t in show(ws, "orphan")["tasks"]] == ["completed", "completed", "pending"]

    again = work(ws)  # a local scheduler now
    assert again.returncode == 0, again.stdout + again.stderr
    assert ran(ledger, "orphan") == ["s0", "s1", "s2"]
    assert_finished_cleanly(ws, "orphan")


def test_a_full_disk_when_the_marker_is_written_fails_the_experiment_with_the_reason(
        ws, tasks_dir, ledger):
    queue(ws, tasks_dir, ledger, {"full": steps("Ledger", "Ledger"),
                                  "other": [{"id": "solo", "method": "Ledger"}]})
    result = drive(ws, "enospc-writing", "s0.done.json")
    assert result.returncode == 1, result.stderr
    assert state_of(ws, "full") == "ConfigsFailed"
    error = error_text(ws, "full")
    assert "step 's0'" in error and "No space left on device" in error, error
    assert ran(ledger, "full") == ["s0"] and not marker(ws, "full", "s0").exists()
    assert state_of(ws, "other") == "ConfigsCompleted"
    assert leftovers(ws) == []


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs to hold a workspace (mounting needs root), unmounted at teardown."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.mark.slow
def test_a_step_that_fills_the_disk_never_completes_its_experiment(small_disk, tasks_dir,
                                                                   ledger):
    ws = small_disk
    Workspace(ws).init()
    queue(ws, tasks_dir, ledger, {"full": steps("Ledger", "FillDisk", "Ledger"),
                                  "later": [{"id": "solo", "method": "Ledger"}]})
    first = work(ws)  # the step fills the disk: not even its failure can be written down
    assert first.returncode == 2, first.stdout + first.stderr
    assert "full: put back in the queue: its failure could not be recorded" in first.stdout
    assert "error: cannot record the outcome of full: [Errno 28] No space left on device; " \
           f"free space in {ws}" in first.stderr
    again = work(ws)  # the disk is still full: the claim or the outcome cannot be recorded
    assert again.returncode == 2
    assert "No space left on device" in again.stderr
    assert "free some space" in again.stderr or f"free space in {ws}" in again.stderr
    assert "Traceback" not in again.stderr
    assert state_of(ws, "full") == state_of(ws, "later") == "ConfigsToRun"
    # s1 may have run again in the second run (at least once): s2 never ran
    full = ran(ledger, "full")
    assert full[:2] == ["s0", "s1"] and set(full[2:]) <= {"s1"} and ran(ledger, "later") == []
    assert leftovers(ws) == []


def test_reconcile_on_start_repairs_what_crashes_left(ws, tasks_dir, ledger, monkeypatch):
    workspace = Workspace(ws)
    queue(ws, tasks_dir, ledger, {"finished": steps("Ledger")})
    assert work(ws).returncode == 0
    # killed after its record said completed, before the final move
    os.rename(ws / "ConfigsCompleted" / "finished.yaml", ws / "ConfigsInProgress" / "finished.yaml")
    claims.owner_file(workspace, "finished").write_text(
        json.dumps({"host": claims.HOST, "pid": dead_pid(), "started": 0}))
    # killed right after the claim's rename, before its owner file
    queue(ws, tasks_dir, ledger, {"ownerless": steps("Ledger")})
    os.rename(ws / "ConfigsToRun" / "ownerless.yaml", ws / "ConfigsInProgress" / "ownerless.yaml")
    dead, live = dead_pid(), os.getpid()
    stale = [ws / "ConfigsInProgress" / f"{TMP_MARK}{dead}@{claims.HOST}~0~ownerless.owner.json",
             ws / "ConfigsFailed" / f"{TMP_MARK}{dead}@{claims.HOST}~1~x.error.txt",
             ws / "ConfigsToRun" / "x.yaml-luigi-tmp-1234"]
    in_use = ws / "ConfigsFailed" / f"{TMP_MARK}{live}@{claims.HOST}~2~y.error.txt"  # live
    for path in [*stale, in_use]:
        path.write_text("half")
    monkeypatch.setattr(claims, "NO_OWNER_GRACE_SECONDS", 0.0)  # its grace has passed

    done = reconcile(workspace)
    assert "finished: had completed; moved to ConfigsCompleted" in done
    assert "ownerless: its worker died; queued again (finished steps are kept)" in done
    assert state_of(ws, "finished") == "ConfigsCompleted"
    assert state_of(ws, "ownerless") == "ConfigsToRun"
    assert not any(path.exists() for path in stale) and in_use.exists()
    in_use.unlink()
    assert work(ws).returncode == 0
    assert read_ledger(ledger) == ["finished:s0", "ownerless:s0"]
    assert_finished_cleanly(ws, "ownerless")


@pytest.mark.slow
def test_three_workers_racing_for_one_queue_run_each_step_once(ws, tasks_dir, ledger,
                                                               tmp_path):
    names = [f"race-{i:02d}" for i in range(12)]
    queue(ws, tasks_dir, ledger, {name: steps("Ledger", "Ledger") for name in names})
    logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
    workers = [background(ws, log, "worker", "--exit-when-empty", "--poll", "0.2")
               for log in logs]
    codes = [worker.wait(WORKER_TIMEOUT) for worker in workers]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0, 0], texts
    assert Counter(read_ledger(ledger)) == Counter(f"{n}:{s}" for n in names for s in ("s0", "s1"))
    completed = [int(re.search(r"(\d+) completed", text).group(1)) for text in texts]
    assert sum(completed) == len(names), texts
    assert sum(1 for n in completed if n) >= 2, "no race: one worker took everything"
    for name in names:
        assert state_of(ws, name) == "ConfigsCompleted"
    assert leftovers(ws) == []


def test_init_keeps_misc_private(tmp_path):
    assert run_cli("init", "--workspace", str(tmp_path / "fresh")).returncode == 0
    assert stat.S_IMODE((tmp_path / "fresh" / "Misc").stat().st_mode) == 0o700


def test_scheduler_on_another_address_warns_and_refuses_a_state_file_others_can_write(ws):
    """Both checks come before luigid listens, so this test never opens a port to others."""
    state = ws / "Misc" / "luigid" / "state.pickle"
    state.parent.mkdir()
    state.write_bytes(b"anyone could have written this")
    os.chmod(state, 0o666)
    result = run_cli("scheduler", "--host", "0.0.0.0", "--port", str(free_port()), ws=ws)
    assert result.returncode == 2
    assert "luigid will listen on 0.0.0.0: it has NO authentication" in result.stderr
    assert f"refusing to load the scheduler state {state}" in result.stderr


def test_gitpython_minimum_excludes_the_vulnerable_releases():
    """GitPython before 3.1.41 runs a git found in the current folder (CVE-2024-22190)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    requirements = [Requirement(line) for line in cfg["options"]["install_requires"].splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    gitpython = next(r for r in requirements if r.name.lower() == "gitpython")
    assert not any(gitpython.specifier.contains(v) for v in ("3.1.40", "3.1.30", "2.1.15"))
    assert gitpython.specifier.contains("3.1.41")
