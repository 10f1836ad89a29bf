"""0.0.7's hyperparameter configs as search specs (``adaptive.legacy``), and the results file
a worker killed between a tell and its write leaves stale."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration.adaptive import study as studies
from orchestration.adaptive.advance import advance
from orchestration.adaptive.hooks import needs_work
from orchestration.adaptive.legacy import to_search
from orchestration.adaptive.start import search
from orchestration.adaptive.store import SearchFolder, Told, experiment_states
from orchestration.exceptions import ConfigError
from orchestration.workspace import Workspace
from tests.e2e.test_compat_007_search import grid_config, project  # noqa: F401

PATH = Path("hyper.yaml")


def test_the_readme_example_maps_onto_a_grid_search():
    spec = to_search(PATH, {
        "githubRepository": "g", "pathToTasks": "tasks", "outputDir": "lr-search",
        "tasks": [{"id": "search", "method": "StartHyperparameterOptimization"}],
        "optimisationMethod": "grid", "gridLineCount": 3,
        "params": [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1},
                   {"name": "optimizer", "type": "list", "vals": ["adam", "sgd"]}],
        "testMethod": "TrainAndScore", "numberTrials": 6,
        "resultsFilepath": "results/lr-search.yaml", "baseOutputDir": "lr-search", "epochs": 3})
    assert spec == {
        "githubRepository": "g", "pathToTasks": "tasks", "outputDir": "lr-search", "epochs": 3,
        "tasks": [{"id": "trial", "method": "TrainAndScore"}],
        "search": {"objective": "trial", "direction": "maximize", "sampler": "grid",
                   "trials": 6, "parallel": 6,
                   "params": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "n": 3},
                              "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}},
                   "results_file": "results/lr-search.yaml"}}


def test_keys_on_the_start_task_count_as_0_0_7_merged_them_and_defaults_fill_the_rest():
    spec = to_search(PATH, {
        "githubRepository": "g", "pathToTasks": "tasks", "outputDir": "{date}/hyper",
        "tasks": [{"id": "s", "method": "StartHyperparameterOptimization", "timeout": 60,
                   "optimisationMethod": "grid", "testMethod": "Score", "seed": 1,
                   "params": [{"name": "y", "type": "float", "min": 2, "max": 2},
                              {"name": "z", "type": "list", "vals": [1, 1, True, "1"]}]}]})
    assert spec["tasks"] == [{"id": "trial", "method": "Score", "timeout": 60}]
    assert spec["outputDir"] == "{date}/hyper" and spec["seed"] == 1  # no baseOutputDir
    assert spec["search"]["params"] == {  # no range to divide: no gridLineCount needed
        "y": {"type": "categorical", "choices": [2]},
        "z": {"type": "categorical", "choices": [1, True, "1"]}}  # a value listed twice: once
    assert spec["search"]["trials"] == 3  # no numberTrials: every grid point

    ranged = [{"name": "x", "type": "float", "min": 3, "max": 1}]
    with pytest.raises(ConfigError, match="gridLineCount: None is not valid; a float "
                                          r"parameter \(x\) needs"):
        to_search(PATH, {"tasks": [{"id": "s", "method": "StartHyperparameterOptimization"}],
                         "optimisationMethod": "grid", "testMethod": "Score", "params": ranged})
    spec = to_search(PATH, {"tasks": [{"id": "s", "method": "StartHyperparameterOptimization"}],
                            "optimisationMethod": "grid", "testMethod": "Score",
                            "params": ranged, "gridLineCount": 2, "numberTrials": 50})
    assert spec["search"]["params"]["x"] == {"type": "float", "low": 1, "high": 3, "n": 2}
    assert spec["search"]["trials"] == 2  # never more than the grid


def test_a_grid_larger_than_a_search_may_run_is_refused_in_0_0_7_terms():
    huge = {"tasks": [{"id": "s", "method": "StartHyperparameterOptimization"}],
            "optimisationMethod": "grid", "testMethod": "Score", "gridLineCount": 400,
            "params": [{"name": n, "type": "float", "min": 0, "max": 1} for n in "ab"]}
    with pytest.raises(ConfigError, match=r"the grid has 160,000 points and a search runs at "
                                          r"most 100,000 trials: set numberTrials") as refused:
        to_search(PATH, huge)
    assert "search.trials" not in str(refused.value)  # a key the user never wrote
    assert to_search(PATH, {**huge, "numberTrials": 500})["search"]["trials"] == 500


def test_other_tasks_beside_the_start_task_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"its other tasks \(prepare\) would not run"):
        to_search(PATH, {"tasks": [{"id": "prepare", "method": "Prepare"},
                                   {"id": "s", "method": "StartHyperparameterOptimization"}]})


def test_a_results_file_left_stale_by_a_killed_worker_is_written_by_the_next(
        ws, project, tmp_path):
    config = tmp_path / "hyper.yaml"
    config.write_text(yaml.safe_dump(grid_config(project, baseOutputDir="hyper")))
    trials = search(config, workspace=ws)
    assert len(trials) == 6 and trials.budget == 6  # all of the grid at once
    folder = SearchFolder(Workspace(ws), "hyper")
    results = Path(folder.meta()["results_file"])
    assert results == ws / "Output" / "hyper" / "results.yaml" and yaml.safe_load(
        results.read_text()) == []
    # trial 1 ended and was told; the worker died before it rewrote the results file
    (ws / "ConfigSources" / "hyper-t0001.yaml").rename(ws / "ConfigsCompleted" /
                                                       "hyper-t0001.yaml")
    study = studies.load(str(folder.journal), "hyper")
    studies.tell(study, "hyper-t0001", 0, -0.5, None)
    ledger = folder.ledger()
    ledger.trials["hyper-t0001"].told = Told.COMPLETED
    folder.save(ledger)

    assert needs_work(folder, experiment_states(Workspace(ws)))
    assert any("1 completed trial(s)" in line for line in advance(folder))
    (row,) = yaml.safe_load(results.read_text())
    assert set(row) == {"x", "optimizer", "result"}  # its run record is gone: result null
    assert not needs_work(folder, experiment_states(Workspace(ws)))


def test_a_ready_stopped_after_starting_the_search_is_finished_by_the_next(
        ws, project, tmp_path):
    from orchestration.ready import ready_all

    source = ws / "ConfigSources" / "hyper.yaml"
    source.write_text(yaml.safe_dump(grid_config(project, baseOutputDir="hyper")))
    search(source, workspace=ws)  # what `ready` had done when it was killed
    outcomes = ready_all(Workspace(ws))
    (mine,) = [o for o in outcomes if o.name == "hyper"]
    assert "search hyper was started from this config already" in mine.message
    assert not source.exists() and sum(o.queued for o in outcomes) == 7  # the search, 6 trials
    assert sorted(p.name for p in (ws / "ConfigsToRun").glob("*.yaml")) == [
        f"hyper-t{i:04d}.yaml" for i in range(1, 7)]
