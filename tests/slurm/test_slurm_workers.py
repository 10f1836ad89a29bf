"""Workers as Slurm array tasks, on a real one-node cluster (conftest.py), through the
installed CLI: submit and exit, drain a queue, lose a task mid-step, cancel, requeue."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import free_port, run_cli, state_of, wait_until
from tests.e2e.test_execution import queue, ran, steps
from tests.slurm.conftest import Cluster

DRAIN_SECONDS = 90


def submit(ws: Path, slurm: Cluster, *args: str) -> str:
    """``slurm submit ARGS``; returns the job id it printed."""
    out = run_cli("slurm", "submit", *args, ws=ws, env=slurm.env)
    assert out.returncode == 0, out.stderr
    return re.search(r"^submitted Slurm job (\d+):", out.stdout, re.M).group(1)


def status(ws: Path, slurm: Cluster) -> str:
    out = run_cli("status", ws=ws, env=slurm.env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def in_folder(ws: Path, folder: str) -> set[str]:
    return {p.stem for p in (ws / folder).glob("*.yaml")}


def test_two_slurm_workers_drain_the_queue_running_each_step_once(ws, tasks_dir, ledger,
                                                                  slurm):
    names = [f"exp-{i:02d}" for i in range(12)]
    queue(ws, tasks_dir, ledger, {name: steps("Ledger", "Ledger") for name in names})
    job = submit(ws, slurm, "--workers", "2", "--cpus-per-worker", "1")
    folder = ws / "Misc" / "slurm" / job
    assert (folder / "job.sbatch").read_text().startswith("#!/bin/bash")
    assert re.search(rf"^slurm: job {job}: \d+ (running|pending)", status(ws, slurm), re.M)

    wait_until(lambda: in_folder(ws, "ConfigsCompleted") == set(names), DRAIN_SECONDS,
               "the two workers to complete all 12 experiments")
    for name in names:
        assert ran(ledger, name) == ["s0", "s1"]
    wait_until(lambda: f"slurm: job {job}: 2 completed" in status(ws, slurm), 30,
               "both array tasks to end")
    logs = [(folder / f"out-{task}.txt").read_text() for task in (0, 1)]
    assert all(re.search(r"\d+ completed, 0 failed", log) for log in logs), logs
    assert sum(len(re.findall(r": completed in", log)) for log in logs) == 12
    data = json.loads(run_cli("status", "--json", ws=ws, env=slurm.env).stdout)
    assert data["slurm"] == {"error": None, "jobs": [
        {"job": job, "folder": str(folder), "tasks": {"completed": 2}, "finished": False}]}


def hold(tmp_path: Path, name: str) -> dict[str, str]:
    """Fields for a WaitForFlag step: it starts, then waits for its go flag."""
    return {"started_flag": str(tmp_path / f"{name}.started"),
            "go_flag": str(tmp_path / f"{name}.go")}


def started(tmp_path: Path, *names: str) -> bool:
    return all((tmp_path / f"{name}.started").exists() for name in names)


def go(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / f"{name}.go").touch()


def task_running(folder: Path, name: str) -> str | None:
    """Which array task's worker started experiment ``name`` (from its log)."""
    for log in sorted(folder.glob("out-*.txt")):
        if f"{name}: started" in log.read_text():
            return log.stem.split("-")[1]
    return None


def test_a_cancelled_array_task_leaves_its_experiment_to_the_other_worker(
        ws, tasks_dir, ledger, slurm, tmp_path):
    queue(ws, tasks_dir, ledger, {
        "held": steps("Ledger", "WaitForFlag", "Ledger", s1=hold(tmp_path, "held")),
        "busy": steps("WaitForFlag", s0=hold(tmp_path, "busy"))})
    job = submit(ws, slurm, "--workers", "2", "--cpus-per-worker", "1")
    wait_until(lambda: started(tmp_path, "held", "busy"), 60, "both workers to start a step")
    assert f"slurm: job {job}: 2 running" in status(ws, slurm)
    folder = ws / "Misc" / "slurm" / job
    task = wait_until(lambda: task_running(folder, "held"), 10, "the log to name held's task")

    killed = slurm.run("scancel", f"{job}_{task}")  # as a preemption or a node's end would
    assert killed.returncode == 0, killed.stderr
    wait_until(lambda: state_of(ws, "held") == "ConfigsToRun", 30,
               "the cancelled worker to put held back in the queue")
    assert ran(ledger, "held") == ["s0", "s1"]
    wait_until(lambda: slurm.tasks().get(f"{job}_{task}") == "CANCELLED", 30,
               "the task to end")
    go(tmp_path, "held", "busy")
    wait_until(lambda: in_folder(ws, "ConfigsCompleted") == {"held", "busy"}, 60,
               "the other worker to finish busy, then held")
    assert ran(ledger, "held") == ["s0", "s1", "s1", "s2"]  # s0 kept; s1 started over
    assert ran(ledger, "busy") == ["s0"]
    other = folder / f"out-{1 - int(task)}.txt"  # the worker logs it after the final move
    wait_until(lambda: "held: completed" in other.read_text(), 10, "the other worker's log")


def test_slurm_cancel_puts_running_experiments_back_in_the_queue(ws, tasks_dir, ledger, slurm,
                                                                 tmp_path):
    names = ("first", "second")
    queue(ws, tasks_dir, ledger, {name: steps("Ledger", "WaitForFlag", "Ledger",
                                              s1=hold(tmp_path, name)) for name in names})
    job = submit(ws, slurm, "--workers", "2", "--cpus-per-worker", "1")
    wait_until(lambda: started(tmp_path, *names), 60, "both workers to start a step")

    cancelled = run_cli("slurm", "cancel", ws=ws, env=slurm.env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled Slurm job {job} (2 running)" in cancelled.stdout
    wait_until(lambda: in_folder(ws, "ConfigsToRun") == set(names), 30,
               "the workers to put their experiments back in the queue")
    wait_until(lambda: f"slurm: job {job}: 2 cancelled" in status(ws, slurm), 30,
               "status to show the job cancelled")
    again = run_cli("slurm", "cancel", ws=ws, env=slurm.env)
    assert again.returncode == 2
    assert "nothing to cancel" in again.stderr

    go(tmp_path, *names)
    local = run_cli("worker", "--exit-when-empty", ws=ws, timeout=60)
    assert local.returncode == 0, local.stderr
    for name in names:
        assert state_of(ws, name) == "ConfigsCompleted"
        assert ran(ledger, name) == ["s0", "s1", "s1", "s2"]  # finished steps kept


def test_the_time_limit_warning_requeues_the_task_which_then_finishes_the_queue(
        ws, tasks_dir, ledger, slurm, tmp_path):
    queue(ws, tasks_dir, ledger, {"long": steps("Ledger", "WaitForFlag", "Ledger",
                                                s1=hold(tmp_path, "long"))})
    job = submit(ws, slurm, "--workers", "1", "--requeue")
    wait_until(lambda: started(tmp_path, "long"), 60, "the step to start")

    # What Slurm sends the task's script 120 s before its time limit (--signal=B:USR1@120)
    warned = slurm.run("scancel", "--batch", "--signal=USR1", f"{job}_0")
    assert warned.returncode == 0, warned.stderr
    wait_until(lambda: state_of(ws, "long") == "ConfigsToRun", 30,
               "the worker to put its experiment back in the queue")
    log = ws / "Misc" / "slurm" / job / "out-0.txt"
    wait_until(lambda: f"requeueing {job}_0" in log.read_text(), 30, "the task to requeue")
    go(tmp_path, "long")
    wait_until(lambda: state_of(ws, "long") == "ConfigsCompleted", 60,
               "the requeued task to come back and finish the experiment")
    assert ran(ledger, "long") == ["s0", "s1", "s1", "s2"]
    assert "Restarts=1" in slurm.run("scontrol", "show", "job", f"{job}_0").stdout


def test_odd_workspace_paths_and_sbatch_values_reach_slurm_as_typed(tmp_path, slurm):
    odd = tmp_path / 'my "odd" ws #1 %A'
    run_cli("init", ws=odd)
    comment = 'run "7" #2 \\ 100%'
    job = submit(odd, slurm, "--workers", "1", f"--sbatch-arg=--comment={comment}")
    shown = slurm.run("scontrol", "show", "job", job).stdout
    assert f"WorkDir={odd}\n" in shown and f"Comment={comment} " in shown, shown
    log = odd / "Misc" / "slurm" / job / "out-0.txt"
    wait_until(lambda: log.exists() and "worker exited with status 0" in log.read_text(), 30,
               "the worker to find the empty queue and exit")


def test_status_leaves_out_jobs_slurm_no_longer_knows(ws, slurm):
    gone = ws / "Misc" / "slurm" / "999999"
    gone.mkdir(parents=True)
    assert "slurm:" not in status(ws, slurm)
    data = json.loads(run_cli("status", "--json", ws=ws, env=slurm.env).stdout)
    assert data["slurm"]["jobs"] == [{"job": "999999", "folder": str(gone), "tasks": {},
                                      "finished": True}]
    assert (gone / "finished").exists()  # not asked about again


def test_a_task_whose_worker_fails_shows_as_failed_with_its_log(ws, tasks_dir, ledger, slurm):
    queue(ws, tasks_dir, ledger, {"waiting": steps("Ledger")})
    nobody = f"http://127.0.0.1:{free_port()}"  # no luigid there: the worker stops, exit 2
    job = submit(ws, slurm, "--workers", "1", "--scheduler-url", nobody)
    wait_until(lambda: f"slurm: job {job}: 1 failed (see Misc/slurm/{job}/err-*.txt)"
               in status(ws, slurm), 30, "status to show the failed task")
    err = (ws / "Misc" / "slurm" / job / "err-0.txt").read_text()
    assert f"cannot reach the Luigi scheduler at {nobody}" in err
    assert state_of(ws, "waiting") == "ConfigsToRun" and ran(ledger, "waiting") == []
