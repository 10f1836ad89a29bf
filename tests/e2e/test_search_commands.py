"""Adaptive search commands around the main loop: rejected specs, a missing Optuna, stop,
a retried trial, and a trial that ended where no worker could tell it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli, state_of
from tests.e2e.test_search import COMPLETE, FAIL, project, status, told, write_spec  # noqa: F401

QUAD = {"x": {"type": "float", "low": -5.0, "high": 5.0},
        "y": {"type": "float", "low": -5.0, "high": 5.0}}
TWO_POINTS = {"sampler": "grid", "parallel": 1, "trials": 5,
              "params": {"x": {"type": "categorical", "choices": [0.0, 1.0]},
                         "y": {"type": "categorical", "choices": [-2.0]}}}


def nothing_written(ws: Path, search: str) -> bool:
    return not (ws / "Misc" / "searches" / search).exists() and not any(
        any((ws / folder).iterdir()) for folder in ("ConfigSources", "ConfigsToRun", "Output"))


def test_a_bad_spec_is_rejected_before_anything_exists(ws, project, tmp_path):
    spec = write_spec(tmp_path / "quad.yaml", project, {
        "objective": "train.loss", "trials": 10,
        "params": {"lr": {"type": "float", "low": "1e-4", "high": 1.0}}})
    done = run_cli("search", "start", str(spec), ws=ws, cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert f"error: {spec}: config rejected:" in done.stderr
    assert "search.objective: 'train.loss' names no task of this config" in done.stderr
    assert "Traceback" not in done.stderr and nothing_written(ws, "quad")


def test_a_first_trial_that_ready_would_reject_queues_nothing(ws, project, tmp_path):
    spec = write_spec(tmp_path / "quad.yaml", project, {
        "trials": 10, "parallel": 2, "params": {"x": QUAD["x"]}})  # Evaluate needs y too
    done = run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert f"error: {spec}: config rejected:" in done.stderr
    assert "x and y are required (in the first trial, x=" in done.stderr
    assert nothing_written(ws, "quad")
    again = run_cli("search", "start", str(spec), "--name", "quad", ws=ws, cwd=tmp_path)
    assert "already exists" not in again.stderr  # the failed start left no search behind


def test_without_optuna_start_says_how_to_install_it(ws, project, tmp_path):
    spec = write_spec(tmp_path / "quad.yaml", project, {"trials": 3, "params": QUAD})
    code = ("import sys; sys.modules['optuna'] = None\n"  # as if it were not installed
            "from orchestration.cli.main import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "search", "start", str(spec)],
                          env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install 'job-orchestration[search]'" in done.stderr
    assert nothing_written(ws, "quad")


def test_stop_asks_no_more_trials_and_lets_the_queued_ones_finish(ws, project, tmp_path):
    spec = write_spec(tmp_path / "quad.yaml", project, {"trials": 10, "parallel": 2,
                                                         "params": QUAD})
    assert run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path).returncode == 0
    stopped = run_cli("search", "stop", "quad", ws=ws)
    assert stopped.returncode == 0 and "no new trials" in stopped.stdout
    again = run_cli("search", "stop", "quad", ws=ws)
    assert again.returncode == 2 and "already stopped" in again.stderr
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    final = status(ws, "quad")
    assert (final["state"], final["asked"], final["counts"]["completed"]) == ("stopped", 2, 2)
    text = run_cli("search", "status", "quad", ws=ws).stdout
    assert "search quad: stopped" in text and "2 of 10 asked; 2 completed" in text
    # with nothing to do, the worker's hooks import neither Optuna nor anything of a search
    code = ("import sys; from orchestration.adaptive import hooks\n"
            "from orchestration.workspace import Workspace; ws = Workspace(sys.argv[1])\n"
            "done = hooks.reconcile(ws) + hooks.experiment_ended(ws, 'other-t0001')"
            " + hooks.experiment_ended(ws, 'plain')\n"
            "print(done, 'optuna' in sys.modules, 'orchestration.ready' in sys.modules)")
    quiet = subprocess.run([sys.executable, "-c", code, str(ws)], capture_output=True,
                           text=True, timeout=60)
    assert quiet.stdout.split() == ["[]", "False", "False"], quiet.stderr


def test_a_failed_trial_that_is_retried_and_completes_is_told_once_more(ws, project, tmp_path):
    fails = tmp_path / "fails"
    fails.mkdir()
    (fails / "t0001.fail").touch()
    spec = write_spec(tmp_path / "two.yaml", project, TWO_POINTS, fail_dir=str(fails))
    assert run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 1  # t0001 failed
    assert status(ws, "two")["state"] == "done"
    assert told(ws, "two") == {"two-t0001": [FAIL], "two-t0002": [COMPLETE]}

    (fails / "t0001.fail").unlink()
    assert run_cli("retry", "two-t0001", ws=ws).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    assert state_of(ws, "two-t0001") == "ConfigsCompleted"
    assert told(ws, "two") == {"two-t0001": [FAIL, COMPLETE], "two-t0002": [COMPLETE]}
    rows = json.loads(run_cli("results", "--search", "two", "--format", "json", ws=ws).stdout)
    assert sorted((r["name"], r["value"]) for r in rows) == sorted(
        (r["name"], (r["params"]["x"] - 1) ** 2) for r in rows)
    assert all(r["state"] == "completed" for r in rows)
    journal = (ws / "Misc" / "searches" / "two" / "journal.log").read_text()
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0  # reconciles again
    assert (ws / "Misc" / "searches" / "two" / "journal.log").read_text() == journal


def test_a_trial_that_ended_where_no_worker_told_it_is_told_once_by_the_next_reconcile(
        ws, project, tmp_path):
    """The state a worker killed between a trial's final move and its tell leaves behind,
    made by the Luigi entry point, which runs an experiment without any worker."""
    spec = write_spec(tmp_path / "quad.yaml", project, {"trials": 2, "parallel": 1,
                                                         "params": QUAD})
    assert run_cli("search", "start", str(spec), "--ready", ws=ws, cwd=tmp_path).returncode == 0
    luigi = Path(sys.executable).with_name("luigi")
    ran = subprocess.run([str(luigi), "--module", "orchestration.pipeline", "Experiment",
                          "--name", "quad-t0001", "--local-scheduler"],
                         env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert state_of(ws, "quad-t0001") == "ConfigsCompleted"
    assert told(ws, "quad") == {"quad-t0001": []}  # ended, not told, nothing new asked
    assert status(ws, "quad")["state"] == "running"

    worker = run_cli("worker", "--exit-when-empty", ws=ws)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "search quad: quad-t0001: told" in worker.stdout
    assert told(ws, "quad") == {"quad-t0001": [COMPLETE], "quad-t0002": [COMPLETE]}
    assert status(ws, "quad")["state"] == "done"
