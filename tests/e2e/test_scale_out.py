"""Many workers on one luigid: each step once; a worker killed or stopped mid-step loses
nothing, leaves no step process behind, and its experiment is finished by another worker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from orchestration.fsutil import pid_alive
from tests.conftest import (make_config, read_ledger, run_cli, state_of, wait_until,
                            write_config)

CHAIN = [{"id": "a", "method": "Ledger"}, {"id": "b", "method": "Ledger"},
         {"id": "c", "method": "Ledger"}]
HELD = [{"id": "a", "method": "Ledger"}, {"id": "b", "method": "WaitForFlag"},
        {"id": "c", "method": "Ledger"}]


def start_worker(ws: Path, log: Path, *args: str, new_session: bool = False
                 ) -> subprocess.Popen:
    """``worker ARGS`` in the background, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "orchestration", "worker", *args],
                                env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                                stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=new_session)


def held_experiment(ws: Path, tasks_dir: Path, ledger: Path, tmp_path: Path) -> dict:
    """One queued experiment whose step ``b`` waits for a flag file; returns the flags."""
    flags = {"started_flag": str(tmp_path / "b.started"), "go_flag": str(tmp_path / "b.go")}
    write_config(ws, "held", make_config(tasks_dir, "held", HELD, ledger=str(ledger),
                                         **flags))
    assert run_cli("ready", ws=ws).returncode == 0
    return flags


def step_pid(flags: dict) -> int:
    path = Path(flags["started_flag"])
    return wait_until(lambda: path.exists() and path.read_text() and int(path.read_text()),
                      60, "step b to start")


@pytest.mark.slow
def test_three_workers_drain_24_configs_each_step_once(ws, tasks_dir, ledger, luigid,
                                                       tmp_path):
    for i in range(24):
        write_config(ws, f"e{i:02d}", make_config(tasks_dir, f"sweep/e{i:02d}", CHAIN,
                                                  ledger=str(ledger)))
    assert run_cli("ready", ws=ws).returncode == 0
    workers = [start_worker(ws, tmp_path / f"w{i}.log", "--scheduler-url", luigid,
                            "--exit-when-empty", "--poll", "0.2") for i in range(3)]
    for i, proc in enumerate(workers):
        assert proc.wait(240) == 0, (tmp_path / f"w{i}.log").read_text()
    lines = read_ledger(ledger)
    assert len(lines) == 24 * 3
    assert Counter(lines).most_common(1)[0][1] == 1, "a step ran twice"
    assert all(state_of(ws, f"e{i:02d}") == "ConfigsCompleted" for i in range(24))
    claimed_by = Counter(json.loads((ws / "Output" / "sweep" / f"e{i:02d}" / "run.json")
                                    .read_text())["attempts"][0]["pid"] for i in range(24))
    assert sum(claimed_by.values()) == 24 and len(claimed_by) >= 2, claimed_by


@pytest.mark.slow
def test_sigkilled_worker_is_taken_over_by_a_running_worker(ws, tasks_dir, ledger, luigid,
                                                            tmp_path):
    flags = held_experiment(ws, tasks_dir, ledger, tmp_path)
    doomed = start_worker(ws, tmp_path / "doomed.log", "--scheduler-url", luigid,
                          "--poll", "0.2")
    step = step_pid(flags)
    assert state_of(ws, "held") == "ConfigsInProgress"
    # a second worker, idle (the only config is taken), reaping dead claims as it polls;
    # --lease is irrelevant here: on one host a dead owner is seen by its pid
    rescuer = start_worker(ws, tmp_path / "rescuer.log", "--scheduler-url", luigid,
                           "--poll", "0.2", "--lease", "1")
    try:
        wait_until(lambda: b"is waiting for configs" in (tmp_path / "rescuer.log").read_bytes(),
                   30, "the rescuer to start (past its start-up reconcile)")
        doomed.kill()
        doomed.wait(10)
        wait_until(lambda: not pid_alive(step), 10, "the killed worker's step to die with it")
        Path(flags["go_flag"]).touch()
        wait_until(lambda: state_of(ws, "held") == "ConfigsCompleted", 60,
                   "the rescuer to finish the experiment")
    finally:
        rescuer.send_signal(signal.SIGTERM)
        code = rescuer.wait(30)
    log = (tmp_path / "rescuer.log").read_text()
    assert code == 0, log
    assert "held: its worker died; queued again" in log
    assert read_ledger(ledger) == ["held:a", "held:b", "held:b", "held:c"]  # a not re-run
    show = json.loads(run_cli("show", "held", "--json", ws=ws).stdout)
    assert [t["state"] for t in show["tasks"]] == ["completed"] * 3


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM to the worker", "Ctrl-C to its process group"])
def test_stopped_worker_puts_its_config_back(ws, tasks_dir, ledger, luigid, tmp_path, how):
    flags = held_experiment(ws, tasks_dir, ledger, tmp_path)
    group = how.startswith("Ctrl-C")
    worker = start_worker(ws, tmp_path / "w.log", "--scheduler-url", luigid, "--poll", "0.2",
                          new_session=group)
    step = step_pid(flags)
    if group:
        os.killpg(worker.pid, signal.SIGINT)
    else:
        worker.send_signal(signal.SIGTERM)
    log_text = lambda: (tmp_path / "w.log").read_text()  # noqa: E731
    assert worker.wait(30) == (130 if group else 0), log_text()  # Ctrl-C: the shell's 130
    assert "held: put back in the queue: the worker is stopping" in log_text()
    assert "1 put back in the queue" in log_text()
    assert not pid_alive(step)
    assert state_of(ws, "held") == "ConfigsToRun"
    assert not (ws / "ConfigsInProgress" / "held.owner.json").exists()
    show = json.loads(run_cli("show", "held", "--json", ws=ws).stdout)
    assert show["state"] == "queued"
    assert [t["state"] for t in show["tasks"]] == ["completed", "pending", "pending"]

    # the next worker resumes at b, against the same luigid (which still thinks the first
    # run's step b is RUNNING: the claim number keeps them apart)
    Path(flags["go_flag"]).touch()
    again = run_cli("worker", "--scheduler-url", luigid, "--exit-when-empty", "--poll", "0.2",
                    ws=ws, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert state_of(ws, "held") == "ConfigsCompleted"
    assert read_ledger(ledger) == ["held:a", "held:b", "held:b", "held:c"]
