"""Adaptive search end to end: the installed CLI, a real git repository, real workers.

The objective is a quadratic bowl, (x - 1)^2 + (y + 2)^2, minimum 0 at x=1, y=-2, returned
by the trivial ``Evaluate`` task of tests/fixtures/search/Tasks.py. What is checked is what a
user relies on: the search ends by itself and finds a good point, never more than
``parallel`` trials are queued or running (polled from the folders), and the journal tells
every trial exactly once, also when a worker is SIGKILLed in the middle.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import git, run_cli, state_of, wait_until

FIXTURE = Path(__file__).parent.parent / "fixtures" / "search" / "Tasks.py"
TOLERANCE = 2.5  # best of 24 TPE trials on [-5, 5]^2: 200 simulated runs all ended below 1.9
COMPLETE, FAIL = 1, 3  # optuna.trial.TrialState values as the journal stores them
ACTIVE_FOLDERS = ("ConfigSources", "ConfigsToRun", "ConfigsInProgress")  # in flow order


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed git repository whose tasks/ folder holds the search tests' Tasks.py."""
    repo = tmp_path / "project"
    (repo / "tasks").mkdir(parents=True)
    shutil.copy(FIXTURE, repo / "tasks" / "Tasks.py")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://github.com/me/project")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo / "tasks"


def write_spec(path: Path, tasks_dir: Path, search: dict, **extra) -> Path:
    spec = {"githubRepository": "https://github.com/me/project", "pathToTasks": str(tasks_dir),
            "outputDir": path.stem, "tasks": [{"id": "evaluate", "method": "Evaluate"}],
            **extra, "search": {"objective": "evaluate.value", **search}}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


QUADRATIC = {"trials": 24, "parallel": 3, "seed": 7,
             "params": {"x": {"type": "float", "low": -5.0, "high": 5.0},
                        "y": {"type": "float", "low": -5.0, "high": 5.0}}}


def start_worker(ws: Path, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "orchestration", "worker", "--poll",
                                 "0.2", *args],
                                env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                                stdout=out, stderr=subprocess.STDOUT)


def status(ws: Path, name: str) -> dict:
    done = run_cli("search", "status", name, "--json", ws=ws)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class ActivePoll(threading.Thread):
    """Counts the trials queued or running, as often as it can, until stopped. Folders are
    listed in the order configs move through them and names are counted once, so a poll
    never sees more than were there at one moment."""

    def __init__(self, ws: Path, search: str) -> None:
        super().__init__(daemon=True)
        self.ws, self.prefix, self.most, self.polls = ws, f"{search}-t", 0, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            names = set()
            for folder in ACTIVE_FOLDERS:
                names |= {p.stem for p in (self.ws / folder).glob(f"{self.prefix}*.yaml")}
            self.most, self.polls = max(self.most, len(names)), self.polls + 1
            self.halt.wait(0.005)  # a busy loop would take a core from the workers

    def stop(self) -> int:
        self.halt.set()
        self.join()
        return self.most


def told(ws: Path, search: str) -> dict[str, list[int]]:
    """Experiment -> the finished states the journal gave its trials, in order."""
    experiment, events = {}, []
    created = 0
    for line in (ws / "Misc" / "searches" / search / "journal.log").read_text().splitlines():
        op = json.loads(line)
        if op["op_code"] == 4:  # create trial: ids are given in order
            trial_id, created = created, created + 1
            if "experiment" in op.get("user_attrs", {}):
                experiment[trial_id] = op["user_attrs"]["experiment"]
            if op.get("state") in (COMPLETE, FAIL):  # a trial added finished (a retry)
                events.append((trial_id, op["state"]))
        elif op["op_code"] == 8 and "experiment" in op["user_attr"]:
            experiment[op["trial_id"]] = op["user_attr"]["experiment"]
        elif op["op_code"] == 6 and op["state"] in (COMPLETE, FAIL):
            events.append((op["trial_id"], op["state"]))
    by_experiment: dict[str, list[int]] = {name: [] for name in experiment.values()}
    for trial_id, state in events:
        by_experiment[experiment[trial_id]].append(state)
    return by_experiment


def all_told(ws: Path, search: str, trials: int) -> bool:
    """The ledger lists ``trials`` trials and each was told (read in-process: polling the
    CLI would take a core from the workers on a 2-core machine)."""
    path = ws / "Misc" / "searches" / search / "ledger.json"
    entries = json.loads(path.read_text())["trials"] if path.exists() else {}
    return len(entries) == trials and all(e["told"] for e in entries.values())


def run_until_done(ws: Path, search: str, trials: int, workers: list[subprocess.Popen],
                   timeout: float = 120) -> dict:
    """Wait until every trial was told and ``search status`` says done, then stop the
    workers with SIGTERM."""
    try:
        wait_until(lambda: all_told(ws, search, trials), timeout, f"{search}'s trials",
                   every=0.2)
        return wait_until(lambda: (s := status(ws, search))["state"] == "done" and s, 30,
                          f"search {search} to be done", every=0.5)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(30)


def test_two_workers_find_the_minimum_never_over_queue_and_tell_each_trial_once(
        ws, project, tmp_path):
    spec = write_spec(tmp_path / "quad.yaml", project, QUADRATIC)
    started = run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "3 queued, 0 rejected" in started.stdout
    poll = ActivePoll(ws, "quad")
    poll.start()
    workers = [start_worker(ws, tmp_path / f"w{i}.log") for i in range(2)]
    final = run_until_done(ws, "quad", 24, workers)
    most = poll.stop()

    assert final["asked"] == 24 and final["counts"]["completed"] == 24, final
    assert final["best"]["value"] <= TOLERANCE, final["best"]
    assert most == 3, f"at most parallel=3 trials queued or running; saw {most}"
    assert poll.polls > 50
    assert told(ws, "quad") == {f"quad-t{i:04d}": [COMPLETE] for i in range(1, 25)}
    pids = Counter(json.loads((ws / "Output" / "quad" / f"t{i:04d}" / "run.json").read_text())
                   ["attempts"][0]["pid"] for i in range(1, 25))
    assert len(pids) == 2, f"both workers should have run trials: {pids}"

    rows = json.loads(run_cli("results", "--search", "quad", "--format", "json",
                              ws=ws).stdout)
    assert [r["value"] for r in rows] == sorted(r["value"] for r in rows)
    assert rows[0]["name"] == final["best"]["name"] and set(rows[0]["params"]) == {"x", "y"}
    best = json.loads(run_cli("search", "best", "quad", "--json", ws=ws).stdout)
    assert best["value"] == rows[0]["value"] and best["output_dir"].endswith(
        f"quad/t{rows[0]['trial']:04d}")
    table = run_cli("results", "--search", "quad", ws=ws).stdout
    assert "evaluate.value" in table and rows[0]["name"] in table


@pytest.mark.slow
def test_a_worker_sigkilled_mid_trial_loses_nothing_and_no_trial_is_told_twice(
        ws, project, tmp_path):
    holds = tmp_path / "holds"
    holds.mkdir()
    (holds / "t0005.hold").touch()  # trial 5 waits in its step until this file goes
    spec = write_spec(tmp_path / "quad.yaml", project, QUADRATIC, hold_dir=str(holds))
    assert run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path).returncode == 0
    poll = ActivePoll(ws, "quad")
    poll.start()
    workers = {i: start_worker(ws, tmp_path / f"w{i}.log") for i in range(2)}
    started = holds / "t0005.started"
    wait_until(started.exists, 60, "trial 5 to start its step")
    owner = json.loads(wait_until(
        lambda: (ws / "ConfigsInProgress" / "quad-t0005.owner.json").exists()
        and (ws / "ConfigsInProgress" / "quad-t0005.owner.json").read_text(), 10,
        "trial 5's owner file"))
    doomed = next(i for i, p in workers.items() if p.pid == owner["pid"])
    workers[doomed].kill()
    workers[doomed].wait(10)
    (holds / "t0005.hold").unlink()
    survivor = [p for i, p in workers.items() if i != doomed]
    final = run_until_done(ws, "quad", 24, survivor)
    most = poll.stop()

    assert final["asked"] == 24 and final["counts"]["completed"] == 24, final
    assert final["best"]["value"] <= TOLERANCE, final["best"]
    assert most <= 3, f"at most parallel=3 trials queued or running; saw {most}"
    assert told(ws, "quad") == {f"quad-t{i:04d}": [COMPLETE] for i in range(1, 25)}
    record = json.loads((ws / "Output" / "quad" / "t0005" / "run.json").read_text())
    assert len(record["attempts"]) == 2, "trial 5 should have been requeued and run again"
    assert "its worker died" in (tmp_path / f"w{1 - doomed}.log").read_text()


def test_grid_of_2x3_points_runs_each_once_then_stops(ws, project, tmp_path):
    grid = {"sampler": "grid", "trials": 50, "parallel": 2,
            "params": {"x": {"type": "float", "low": 0.0, "high": 1.0, "n": 2},
                       "y": {"type": "float", "low": -3.0, "high": -1.0, "step": 1.0}}}
    spec = write_spec(tmp_path / "grid.yaml", project, grid)
    started = run_cli("search", "start", str(spec), ws=ws, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "the grid has 6 points" in started.stdout
    assert state_of(ws, "grid-t0001") == "ConfigSources"  # without --ready: the user readies
    assert run_cli("ready", ws=ws).returncode == 0
    # one worker: each trial it finishes queues the next before it looks for work again
    worker = run_cli("worker", "--exit-when-empty", ws=ws)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    final = status(ws, "grid")
    assert final["state"] == "done" and final["asked"] == 6, final
    rows = json.loads(run_cli("results", "--search", "grid", "--format", "json", ws=ws).stdout)
    assert sorted((r["params"]["x"], r["params"]["y"]) for r in rows) == [
        (x, y) for x in (0.0, 1.0) for y in (-3.0, -2.0, -1.0)]
    assert rows[0]["params"] == {"x": 1.0, "y": -2.0} and rows[0]["value"] == 0.0
    assert told(ws, "grid") == {f"grid-t{i:04d}": [COMPLETE] for i in range(1, 7)}
    journal = (ws / "Misc" / "searches" / "grid" / "journal.log").read_text()
    again = run_cli("worker", "--exit-when-empty", ws=ws)  # reconciling a done search: no-op
    assert "search grid" not in again.stdout
    assert (ws / "Misc" / "searches" / "grid" / "journal.log").read_text() == journal
    assert sorted(p.name for p in (ws / "ConfigsCompleted").glob("*.yaml")) == [
        f"grid-t{i:04d}.yaml" for i in range(1, 7)]
