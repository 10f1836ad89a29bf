"""``orchestration.submit`` in process: duplicates, names, the hash header, ready, errors."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from orchestration import submit
from orchestration.config.loader import load_config
from orchestration.exceptions import ConfigError, UsageError
from orchestration.submission import _cached_hash, snapshot_hash
from orchestration.states import ExperimentState
from tests.conftest import make_config

TRAIN = [{"id": "train", "method": "Ledger"}]


def write_base(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def base(tmp_path, tasks_dir) -> Path:
    return write_base(tmp_path / "base.yaml", make_config(tasks_dir, "runs/${seed}", TRAIN,
                                                          seed=0, epochs=1))


def source(ws: Path, name: str) -> Path:
    return ws / "ConfigSources" / f"{name}.yaml"


def test_identical_points_of_one_call_are_written_once(ws, base):
    names = submit(base, sweep={"seed": [1, 1, 2]}, workspace=ws)
    assert names == ["base-seed1", "base-seed2"]
    [skipped] = names.skipped
    assert (skipped.duplicate_of, skipped.duplicate_state) == ("base-seed1", ExperimentState.NEW)


def test_a_taken_name_with_a_different_config_gets_the_config_hash(ws, base, tasks_dir):
    assert submit(base, sweep={"seed": [1]}, workspace=ws) == ["base-seed1"]
    write_base(base, make_config(tasks_dir, "other/${seed}", TRAIN, seed=0, epochs=2))
    names = submit(base, sweep={"seed": [1]}, workspace=ws)
    digest = names.points[0].config_sha256
    assert names == [f"base-seed1-{digest[:8]}"] and names.points[0].renamed
    assert digest == snapshot_hash(load_config(source(ws, names[0])), Path.cwd())


def test_the_header_hash_is_trusted_only_while_the_text_is_unchanged(ws, base):
    submit(base, sweep={"seed": [1]}, workspace=ws)
    path = source(ws, "base-seed1")
    assert _cached_hash(path.read_bytes()) == snapshot_hash(load_config(path), Path.cwd())
    path.write_text(path.read_text().replace("seed: 1", "seed: 5"))  # edited by hand
    assert _cached_hash(path.read_bytes()) is None
    assert submit(base, sweep={"seed": [5]}, workspace=ws).skipped[0].duplicate_of == \
        "base-seed1"
    assert submit(base, sweep={"seed": [1]}, workspace=ws)[0].startswith("base-seed1-")


def test_timestamps_keep_the_hash_out_of_the_header_and_still_dedupe(ws, tmp_path, tasks_dir):
    base = write_base(tmp_path / "stamp.yaml", make_config(
        tasks_dir, "runs/${now:%Y}/${seed}", TRAIN, seed=0))
    assert submit(base, sweep={"seed": [1]}, workspace=ws) == ["stamp-seed1"]
    text = source(ws, "stamp-seed1").read_text()
    assert "outputDir: runs/${now:%Y}/${seed}" in text and "config_sha256" not in text
    assert submit(base, sweep={"seed": [1]}, workspace=ws) == []


def test_a_relative_path_to_tasks_is_written_absolute(ws, tmp_path, tasks_dir, monkeypatch):
    monkeypatch.chdir(tasks_dir.parent)
    base = write_base(tmp_path / "rel.yaml", make_config(Path("tasks"), "rel", TRAIN))
    submit(base, workspace=ws)
    assert yaml.safe_load(source(ws, "rel").read_text())["pathToTasks"] == str(tasks_dir)


def test_too_long_names_fall_back_to_stem_and_hash(ws, base):
    names = submit(base, overrides={"+note": "x" * 150}, workspace=ws)
    assert names == [f"base-{names.points[0].config_sha256[:8]}"]


def test_ready_true_readies_the_written_and_reports_rejections(ws, tmp_path, tasks_dir):
    base = write_base(tmp_path / "chk.yaml", make_config(
        tasks_dir, "chk/${threshold}", [{"id": "check", "method": "Checked"}], threshold=1))
    names = submit(base, sweep={"threshold": [1, -1]}, ready=True, workspace=ws)
    assert names == ["chk-threshold1", "chk-threshold-1"]
    assert names.rejected == ["chk-threshold-1"]
    assert (ws / "ConfigsToRun" / "chk-threshold1.yaml").exists()
    assert (ws / "ConfigsFailed" / "chk-threshold-1.error.txt").exists()
    record = json.loads((ws / "Output" / "chk" / "1" / "run.json").read_text())
    assert record["config_sha256"] == names.points[0].config_sha256


@pytest.mark.parametrize("config, error, message", [
    ({"outputDir": "x/${missing}"}, ConfigError, r"base.yaml with seed=1: config rejected"),
    ({"tasks": []}, ConfigError, "tasks"),
])
def test_a_point_that_does_not_resolve_or_check_writes_nothing(ws, base, tasks_dir, config,
                                                                error, message):
    write_base(base, {**make_config(tasks_dir, "ok", TRAIN, seed=0), **config})
    with pytest.raises(error, match=message):
        submit(base, sweep={"seed": [1, 2]}, workspace=ws)
    assert not list((ws / "ConfigSources").iterdir())


def test_a_missing_base_is_a_usage_error(ws, tmp_path):
    with pytest.raises(UsageError, match="no such config file"):
        submit(tmp_path / "nope.yaml", workspace=ws)


def test_the_written_text_matches_its_header_hash(ws, base):
    submit(base, overrides=["epochs=3"], workspace=ws)
    head, hashes, body = source(ws, "base-epochs3").read_bytes().split(b"\n", 3)[1:]
    assert b"epochs=3; ${...} are resolved at `ready`" in head
    assert hashlib.sha256(body).hexdigest().encode() in hashes
