"""Workers as Slurm array tasks, on a real one-node cluster (conftest.py), through the
installed CLI: submit and exit, drain a queue, lose a task mid-step, cancel, requeue."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import run_cli, state_of, wait_until
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
