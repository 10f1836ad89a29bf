"""``status``: every experiment with the time it has left, learned from earlier runs, and a
live view that ends when the queue is done."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_config, run_cli, wait_until, write_config

TWO_STEPS = [{"id": "prepare", "method": "Ledger", "sleep": 0.2},
             {"id": "train", "method": "Sleep", "sleep": 0.5}]


def status_json(ws: Path) -> dict:
    result = run_cli("status", "--json", ws=ws)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_queued_experiment_gets_eta_from_an_earlier_run(ws, tasks_dir):
    write_config(ws, "first", make_config(tasks_dir, "first", TWO_STEPS))
    assert run_cli("ready", ws=ws).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    first = json.loads(run_cli("show", "first", "--json", ws=ws).stdout)
    took = sum(t["seconds"] for t in first["tasks"])

    write_config(ws, "second", make_config(tasks_dir, "second", TWO_STEPS))
    assert run_cli("ready", ws=ws).returncode == 0
    status = status_json(ws)
    rows = {e["name"]: e for e in status["experiments"]}
    assert status["totals"] == {"completed": 1, "queued": 1}
    assert rows["second"]["state"] == "queued"
    assert rows["second"]["eta_seconds"] == pytest.approx(took, abs=0.1)
    assert rows["first"]["eta_seconds"] == 0
    assert status["eta_seconds"] == pytest.approx(took, abs=0.1)  # one worker at a time
    assert status["workers"] == 0
    show_keys = set(first) - {"config"}
    assert show_keys <= set(rows["first"]) and "config" not in rows["first"]

    text = run_cli("status", ws=ws)
    assert text.returncode == 0
    assert "second" in text.stdout and "queued" in text.stdout
    assert "1 completed, 1 queued" in text.stdout and "all done in ~" in text.stdout


def test_status_of_a_running_sweep_and_watch_until_done(ws, tasks_dir, tmp_path):
    go = tmp_path / "go"
    write_config(ws, "held", make_config(tasks_dir, "held", [
        {"id": "hold", "method": "WaitForFlag", "max_wait": 20}],
        started_flag=str(tmp_path / "started"), go_flag=str(go)))
    assert run_cli("ready", ws=ws).returncode == 0
    env = {**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)}
    worker = subprocess.Popen([sys.executable, "-m", "orchestration", "worker",
                               "--exit-when-empty", "--poll", "0.2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # progress reaches the run record about once a second; from it the ETA is learned
        status = wait_until(lambda: (s := status_json(ws))["eta_seconds"] is not None and s,
                            30, "an ETA from the running step's progress")
        row = status["experiments"][0]
        assert (row["state"], row["worker_alive"], status["workers"]) == ("running", True, 1)
        # its own rate projects its 20 s (more while the start-up weighs on the first
        # percent of progress: seconds on a loaded machine)
        assert 0 < row["eta_seconds"] <= 60
        watch = subprocess.Popen([sys.executable, "-m", "orchestration", "status", "--watch"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        go.touch()
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert "1 completed" in out
        assert worker.wait(30) == 0
    finally:
        go.touch()
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_watch_and_json_do_not_mix(ws):
    result = run_cli("status", "--watch", "--json", ws=ws)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --watch")
