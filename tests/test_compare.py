"""Comparing two runs: dotted config differences, and code diffs from real git repositories."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestration.config.keys import flatten, flatten_config
from orchestration.records.compare import compare, config_diff
from orchestration.records.provenance import Provenance, ProvenanceCache
from orchestration.records.run_record import RunRecord
from tests.conftest import git

BASE = {"githubRepository": "r", "pathToTasks": "/p", "outputDir": "a",
        "tasks": [{"id": "prep", "method": "Prep"}, {"id": "train", "method": "Train",
                                                     "epochs": 3}],
        "lr": 0.1, "model": {"depth": 2, "layers": [64, 64], "extra": {}}}


def test_flatten_uses_dotted_keys_and_keeps_lists_as_values():
    assert flatten({"a": {"b": {"c": 1}}, "l": [1, {"x": 2}], "e": {}}) == {
        "a.b.c": 1, "l": [1, {"x": 2}], "e": {}}


def test_flatten_config_keys_tasks_by_id():
    flat = flatten_config(BASE)
    assert flat["tasks.train.epochs"] == 3
    assert flat["tasks.prep.method"] == "Prep"
    assert flat["model.depth"] == 2 and flat["model.layers"] == [64, 64]
    assert flat["model.extra"] == {}
    assert "tasks.prep.id" not in flat


def test_config_diff_lists_changes_additions_removals_and_output_dir_last():
    new = {**BASE, "outputDir": "b", "lr": 0.2, "seed": 3,
           "model": {"depth": "2", "layers": [64, 128], "extra": {}},
           "tasks": [{"id": "train", "method": "Train", "epochs": 5}]}
    assert config_diff(BASE, new) == [
        "lr: 0.1 -> 0.2",
        'model.depth: 2 -> "2"',  # a type change is a change
        "model.layers: [64, 64] -> [64, 128]",
        "+ seed: 3",
        '- tasks.prep.method: "Prep"',
        "tasks.train.epochs: 3 -> 5",
        'outputDir: "a" -> "b"',
    ]
    assert config_diff(BASE, dict(BASE)) == []


def _commit(repo: Path, text: str) -> None:
    (repo / "tasks" / "Tasks.py").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", text[:20])


def record(config: dict, provenance: Provenance, **fields: object) -> RunRecord:
    found = RunRecord.new("x", config, [], Path("/o"), b"", provenance, {}, [])
    return dataclasses.replace(found, **fields)


def test_compare_diffs_the_recorded_code_and_environment(code_repo, tasks_dir):
    _commit(code_repo, "X = 1\n")
    old = ProvenanceCache().capture(tasks_dir)
    _commit(code_repo, "X = 2\n")
    (tasks_dir / "helper.py").write_text("Y = 3\n")  # untracked: part of the code state
    new = ProvenanceCache().capture(tasks_dir)
    env = {"python": "3.11.7", "packages": {"numpy": "1.26.0"}}
    found = compare(record(BASE, old, environment=env),
                    record({**BASE, "lr": 0.3}, new,
                           environment={**env, "packages": {"numpy": "2.0.1"}}))
    assert found.config == ["lr: 0.1 -> 0.3"]
    assert "-X = 1\n+X = 2\n" in found.code
    assert "+Y = 3" in found.code
    assert found.environment == ["numpy: 1.26.0 -> 2.0.1"]


def test_compare_prefers_the_run_time_code_state(code_repo, tasks_dir):
    ready = ProvenanceCache().capture(tasks_dir)
    _commit(code_repo, "X = 9\n")
    ran = ProvenanceCache().capture(tasks_dir)
    same = compare(record(BASE, ran), record(BASE, ready, run_provenance=ran))
    assert same.code == ""
    assert "+X = 9" in compare(record(BASE, ready), record(BASE, ran)).code


def test_a_lost_commit_still_shows_config_and_environment(code_repo, tasks_dir):
    prov = ProvenanceCache().capture(tasks_dir)
    gone = dataclasses.replace(prov, commit="0" * 40)
    found = compare(record(BASE, prov), record({**BASE, "lr": 1}, gone))
    assert found.code.startswith("no code diff: commit 0000")
    assert found.config == ["lr: 0.1 -> 1"]
    missing = compare(record(BASE, Provenance.unavailable("not in git.")), record(BASE, prov))
    assert "run A has no git provenance (not in git.)" in missing.code
