"""job-orchestration 0.0.7's grid search config (``StartHyperparameterOptimization``) runs
unchanged: ``ready`` turns it into a grid search whose trials run ``testMethod``, the workers
run every grid point once, and the results file has 0.0.7's shape. Through our commands and
through 0.0.7's ``-action`` commands; a 2 x 3 grid of a trivial task."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES, commit_repo, run_cli, state_of, write_config

GRID = {(x, opt) for x in (1.0, 3.0) for opt in ("adam", "sgd", "rmsprop")}
BONUS = {"adam": 0.5, "sgd": 0.0, "rmsprop": 0.25}  # Score in tests/fixtures/compat007


@pytest.fixture
def project(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    shutil.copytree(FIXTURES / "compat007", repo)
    return commit_repo(repo)


def grid_config(repo: Path, **extra) -> dict:
    """A config as 0.0.7's README-less hyperparameter module wanted it."""
    return {"githubRepository": "https://github.com/me/project", "pathToTasks": str(repo),
            "outputDir": "{date}/hyper-start", "UNSAFE_ignoreDirtyCheck": True,
            "tasks": [{"id": "search", "method": "StartHyperparameterOptimization"}],
            "optimisationMethod": "grid", "gridLineCount": 2,
            "params": [{"name": "x", "type": "float", "min": 1, "max": 3},
                       {"name": "optimizer", "type": "list", "vals": ["adam", "sgd", "rmsprop"]}],
            "testMethod": "Score", "numberTrials": 6, "resultsFilepath": "results.yaml",
            "baseOutputDir": "{date}/hyper", **extra}


def command(module: str, new: list[str], action: str) -> list[str]:
    return new if module == "orchestration" else ["-action", action]


@pytest.mark.parametrize("module", ["orchestration", "job_orchestration"])
def test_the_007_grid_config_runs_every_point_once_and_writes_its_results_file(
        tmp_path, project, module):
    ws, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_cli("init", ws=ws).returncode == 0
    write_config(ws, "hyper", grid_config(project))
    started = time.time()
    ready = run_cli(*command(module, ["ready"], "readyConfigs"), ws=ws, cwd=elsewhere,
                    module=module)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "started search hyper (grid, 6 trials" in ready.stdout
    assert "6 queued, 0 rejected, 1 search started" in ready.stdout, ready.stdout
    trials = [f"hyper-t{i:04d}" for i in range(1, 7)]
    assert all(state_of(ws, t) == "ConfigsToRun" for t in trials)  # all queued by that ready
    # the config is the search's now: not left in ConfigSources, kept byte for byte
    assert not (ws / "ConfigSources" / "hyper.yaml").exists()
    spec = ws / "Misc" / "searches" / "hyper" / "spec.yaml"
    assert yaml.safe_load(spec.read_text()) == grid_config(project)

    work = run_cli(*command(module, ["worker", "--exit-when-empty"], "newWorker"), ws=ws,
                   cwd=elsewhere, module=module)
    assert work.returncode == 0, work.stdout + work.stderr
    assert all(state_of(ws, t) == "ConfigsCompleted" for t in trials)

    (date,) = [d for d in {time.strftime("%Y_%m_%d", time.localtime(t))
                           for t in (started, time.time())} if (ws / "Output" / d).is_dir()]
    rows = yaml.safe_load((ws / "Output" / date / "hyper" / "results.yaml").read_text())
    # 0.0.7's shape: one mapping per trial, its parameters and what testMethod returned
    assert all(set(row) == {"x", "optimizer", "result"} for row in rows)
    assert sorted((row["x"], row["optimizer"]) for row in rows) == sorted(GRID)  # each once
    assert all(row["result"] == -(row["x"] - 2) ** 2 + BONUS[row["optimizer"]] for row in rows)
    listed = json.loads(run_cli("status", "--json", ws=ws).stdout)["experiments"]
    assert sorted(e["name"] for e in listed) == trials  # the trials, and no other experiment
    for info in listed:  # each ran Score in its own folder, Output/<date>/hyper/t000N
        out = Path(info["output_dir"])
        assert out == ws / "Output" / date / "hyper" / info["name"][-5:]
        assert (out / "score.txt").read_text().startswith("x=")
    assert list(elsewhere.iterdir()) == []

    status = json.loads(run_cli("search", "status", "hyper", "--json", ws=ws).stdout)
    assert (status["state"], status["counts"]["completed"]) == ("done", 6)
    best = status["best"]  # the largest result, as 0.0.7 logged it
    assert best["value"] == -0.5 and best["params"]["optimizer"] == "adam"


def test_007_search_configs_that_cannot_run_are_rejected_with_the_reason(tmp_path, project):
    ws = tmp_path / "ws"
    assert run_cli("init", ws=ws).returncode == 0
    write_config(ws, "bad-params", grid_config(project, gridLineCount=1, optimisationMethod="tpe",
                                               params=[{"name": "x", "type": "int"}]))
    write_config(ws, "outside", grid_config(project, resultsFilepath=str(tmp_path / "r.yaml")))
    generated = grid_config(project, tasks=[
        {"id": "HyperparameterTrial", "method": "HyperparameterTrial", "paramVals": {"x": 1.0}},
        {"id": "HyperparameterEvaluate", "method": "HyperparameterEvaluate"}])
    write_config(ws, "hyperparameter_1700000000", generated)
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 2 and "0 queued, 3 rejected" in ready.stdout, ready.stdout
    errors = {name: (ws / "ConfigsFailed" / f"{name}.error.txt").read_text()
              for name in ("bad-params", "outside", "hyperparameter_1700000000")}
    assert "optimisationMethod: 'tpe' is not valid; 0.0.7 knew only grid" in errors["bad-params"]
    assert "params[0].type: 'int' is not valid; expected float" in errors["bad-params"]
    assert ("resultsFilepath: " in errors["outside"]
            and "outside the workspace's Output/ folder" in errors["outside"])
    assert ("belong to a trial config that job-orchestration 0.0.7 wrote"
            in errors["hyperparameter_1700000000"])
    assert not (ws / "Misc" / "searches").exists() or not any(
        (ws / "Misc" / "searches").iterdir())  # nothing was started
