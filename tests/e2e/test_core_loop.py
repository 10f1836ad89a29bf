"""The core loop through the installed CLI: ready, worker, show, logs, retry."""
from __future__ import annotations

import json

from tests.conftest import make_config, read_ledger, run_cli, state_of, write_config

CHAIN = [{"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "Ledger"},
         {"id": "eval", "method": "Ledger"}]


def test_three_experiments_complete_each_step_once(ws, tasks_dir, ledger):
    for i in range(3):
        write_config(ws, f"exp-{i}", make_config(tasks_dir, f"sweep/exp-{i}", CHAIN,
                                                 ledger=str(ledger), value=i))
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 0, ready.stderr
    assert "3 queued, 0 rejected" in ready.stdout
    work = run_cli("worker", "--exit-when-empty", ws=ws)
    assert work.returncode == 0, work.stderr
    assert sorted(read_ledger(ledger)) == sorted(
        f"sweep/exp-{i}:{t}" for i in range(3) for t in ("prepare", "train", "eval"))
    for i in range(3):
        assert state_of(ws, f"exp-{i}") == "ConfigsCompleted"
        assert (ws / "Output" / "sweep" / f"exp-{i}" / "train.txt").read_text() == str(i)
    show = json.loads(run_cli("show", "exp-1", "--json", ws=ws).stdout)
    assert show["state"] == "completed"
    assert [t["state"] for t in show["tasks"]] == ["completed"] * 3
    assert show["tasks"][1]["result"] == {"value": 1, "task": "train"}
    logs = run_cli("logs", "exp-1", "train", ws=ws).stdout
    assert "stdout of train" in logs and "log of train" in logs

    # a second worker run finds nothing to do and runs nothing
    again = run_cli("worker", "--exit-when-empty", ws=ws)
    assert again.returncode == 0
    assert len(read_ledger(ledger)) == 9


def test_failure_then_retry_reruns_only_the_failed_step_and_later(ws, tasks_dir, ledger,
                                                                  tmp_path):
    flag = tmp_path / "fixed"
    write_config(ws, "broken", make_config(
        tasks_dir, "broken", [{"id": "a", "method": "Ledger"},
                              {"id": "b", "method": "Fail"}, {"id": "c", "method": "Ledger"}],
        ledger=str(ledger), fix_flag=str(flag)))
    write_config(ws, "fine", make_config(tasks_dir, "fine", CHAIN, ledger=str(ledger)))
    assert run_cli("ready", ws=ws).returncode == 0
    work = run_cli("worker", "--exit-when-empty", ws=ws)
    assert work.returncode == 1
    assert state_of(ws, "broken") == "ConfigsFailed"
    assert state_of(ws, "fine") == "ConfigsCompleted"
    error = (ws / "ConfigsFailed" / "broken.error.txt").read_text()
    assert "'b'" in error and "ValueError: deliberate failure" in error and "b.log" in error
    flag.touch()
    assert run_cli("retry", "broken", ws=ws).returncode == 0
    assert state_of(ws, "broken") == "ConfigsToRun"
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    assert state_of(ws, "broken") == "ConfigsCompleted"
    runs = [line for line in read_ledger(ledger) if line.startswith("broken:")]
    assert runs == ["broken:a", "broken:b", "broken:b", "broken:c"]
