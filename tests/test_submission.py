"""``orchestration.submit`` in process: duplicates, names, the hash header, ready, errors."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import omegaconf.base
import omegaconf.grammar_parser
import pytest
import yaml

from orchestration import submit
from orchestration.config.loader import load_config
from orchestration.exceptions import ConfigError, UsageError
from orchestration.submission import header_hashes, snapshot_hash
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
    text_hash, config_hash = header_hashes(path.read_bytes())
    assert config_hash == snapshot_hash(load_config(path), Path.cwd())
    path.write_text(path.read_text().replace("seed: 1", "seed: 5"))  # edited by hand
    assert header_hashes(path.read_bytes()) is None
    assert submit(base, sweep={"seed": [5]}, workspace=ws).skipped[0].duplicate_of == \
        "base-seed1"  # by its resolved config: the header no longer counts
    assert submit(base, sweep={"seed": [1]}, workspace=ws)[0].startswith("base-seed1-")


def test_timestamps_make_a_duplicate_only_of_the_same_text(ws, tmp_path, tasks_dir):
    base = write_base(tmp_path / "stamp.yaml", make_config(
        tasks_dir, "runs/${now:%H%M%S%f}/${seed}", TRAIN, seed=0))
    assert submit(base, sweep={"seed": [1, 2]}, ready=True, workspace=ws) == \
        ["stamp-seed1", "stamp-seed2"]
    text = (ws / "ConfigsToRun" / "stamp-seed1.yaml").read_text()
    assert "outputDir: runs/${now:%H%M%S%f}/${seed}" in text
    assert "text_sha256" in text and "config_sha256" not in text
    again = submit(base, sweep={"seed": [1, 2, 3]}, workspace=ws)
    assert again == ["stamp-seed3"]
    assert [(p.duplicate_of, p.duplicate_state, p.config_sha256) for p in again.skipped] == [
        ("stamp-seed1", ExperimentState.QUEUED, None),
        ("stamp-seed2", ExperimentState.QUEUED, None)]


def test_a_relative_path_to_tasks_is_written_absolute(ws, tmp_path, tasks_dir, monkeypatch):
    monkeypatch.chdir(tasks_dir.parent)
    base = write_base(tmp_path / "rel.yaml", make_config(Path("tasks"), "rel", TRAIN))
    submit(base, workspace=ws)
    assert yaml.safe_load(source(ws, "rel").read_text())["pathToTasks"] == str(tasks_dir)


def test_too_long_names_fall_back_to_stem_and_hash(ws, base):
    names = submit(base, sweep={"+note": ["x" * 150]}, workspace=ws)
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
    assert submit(base, overrides=["epochs=3"], workspace=ws) == ["base"]
    head, hashes, body = source(ws, "base").read_bytes().split(b"\n", 3)[1:]
    assert b"epochs=3; ${...} are resolved at `ready`" in head
    assert hashlib.sha256(body).hexdigest().encode() in hashes


INTERPOLATED = """\
githubRepository: https://github.com/me/project
pathToTasks: {tasks}
outputDir: runs/${{model.name}}-${{seed}}
tasks:
  - {{id: train, method: Ledger, epochs: "${{epochs}}", note: "${{.method}}"}}
seed: 0
epochs: 2
model: {{name: "m${{seed}}", size: "${{epochs}}", copy: "${{model_defaults}}"}}
model_defaults: {{depth: "${{epochs}}", tags: [a, "${{seed}}"]}}
layers: [1, "${{seed}}", {{k: "${{epochs}}"}}]
literal: "\\\\${{not.resolved}}"
home: ${{oc.env:HOME,none}}
"""


def test_points_resolve_as_ready_resolves_them(ws, tmp_path, tasks_dir):
    """Each point is resolved by asking OmegaConf only for its interpolated values: the
    result must be the snapshot `ready` takes of the written file."""
    base = tmp_path / "interp.yaml"
    base.write_text(INTERPOLATED.format(tasks=tasks_dir))
    names = submit(base, sweep={"seed": [1, 2], "model.name": ["a", "b"]}, workspace=ws)
    assert len(names) == 4
    for point in names.points:
        written = load_config(source(ws, point.name))
        assert point.config_sha256 == snapshot_hash(written, Path.cwd())
    assert omegaconf.base.parse is omegaconf.grammar_parser.parse  # the parse memo is gone
    resolved = load_config(source(ws, "interp-seed2-name_b"))
    assert resolved["model"] == {"name": "b", "size": 2, "copy": {"depth": 2, "tags": ["a", 2]}}
    assert resolved["layers"] == [1, 2, {"k": 2}] and resolved["literal"] == "${not.resolved}"
    assert resolved["tasks"][0]["note"] == "Ledger" and resolved["outputDir"] == "runs/b-2"


@pytest.mark.parametrize("extra, message", [
    ("broken: ${nosuch}\n", r"broken: '\$\{nosuch\}' cannot be resolved"),
    ("later: ???\n", r"later: '\?\?\?' is a required value"),
    ("cycle: ${cycle}\n", "cycle")])
def test_a_point_that_does_not_resolve_names_the_key_as_ready_would(ws, tmp_path, tasks_dir,
                                                                      extra, message):
    base = tmp_path / "bad.yaml"
    base.write_text(INTERPOLATED.format(tasks=tasks_dir) + extra)
    with pytest.raises(ConfigError, match=message) as info:
        submit(base, sweep={"seed": [1, 2]}, workspace=ws)
    assert "bad.yaml with seed=1: config rejected" in str(info.value)
    assert not list((ws / "ConfigSources").iterdir())


def test_task_keys_are_set_by_task_id(ws, tmp_path, tasks_dir):
    base = write_base(tmp_path / "t.yaml", make_config(tasks_dir, "t/${tasks.1.timeout}", [
        {"id": "prep", "method": "Ledger"}, {"id": "train.v2", "method": "Ledger",
                                             "timeout": 60}]))
    names = submit(base, overrides=["+tasks.prep.retries=2"],
                   sweep=["tasks.train.v2.timeout=30,90"], workspace=ws)
    assert names == ["t-timeout30", "t-timeout90"]
    config = load_config(source(ws, "t-timeout90"))
    assert config["tasks"] == [{"id": "prep", "method": "Ledger", "retries": 2},
                               {"id": "train.v2", "method": "Ledger", "timeout": 90}]


def test_an_output_dir_shared_inside_a_sweep_is_refused_naming_the_lacking_keys(ws, base,
                                                                              tasks_dir):
    write_base(base, make_config(tasks_dir, "sweep/lr-${lr}", TRAIN, lr=0.1, seed=0, opt="a"))
    for dry_run in (True, False):
        with pytest.raises(UsageError, match=r"the points lr=0.1 seed=1 opt=a and lr=0.1 "
                           r"seed=2 opt=a both write into outputDir sweep/lr-0.1: outputDir "
                           r"sweep/lr-\$\{lr\} lacks seed; put \$\{seed\} into it"):
            submit(base, sweep=["lr=0.1,0.2", "seed=1,2", "opt=a"], workspace=ws,
                   dry_run=dry_run)
    assert not list((ws / "ConfigSources").iterdir())
    write_base(base, make_config(tasks_dir, "${sub}", TRAIN, sub="a", seed=0))
    with pytest.raises(UsageError, match="write into a and a/b, one inside the other: "
                                         "outputDir .* lacks sub"):
        submit(base, sweep=["sub=a,a/b"], workspace=ws)
    write_base(base, make_config(tasks_dir, "s/${seed}", TRAIN, seed=0, x=1))
    names = submit(base, sweep={"x": ["${seed}", 1]}, overrides={"seed": 1}, workspace=ws)
    assert len(names) == 1 and names.skipped[0].duplicate_of == names[0]  # the same config


@pytest.mark.parametrize("count", [3, 40])  # one fsync each, or one syncfs for the batch
def test_a_batch_is_written_whole_with_no_temp_files_left(ws, base, count):
    names = submit(base, sweep={"seed": list(range(count))}, workspace=ws)
    assert sorted(p.name for p in (ws / "ConfigSources").iterdir()) == \
        sorted(f"{name}.yaml" for name in names)
    assert all(load_config(source(ws, name))["seed"] == int(name.split("seed")[1])
               for name in names)


def test_names_follow_name_keys_or_a_template(ws, base):
    assert submit(base, sweep={"seed": [2, 10]}, overrides=["epochs=5"], name_keys="seed,epochs",
                  workspace=ws) == ["base-seed02-epochs5", "base-seed10-epochs5"]
    assert submit(base, sweep={"seed": [3]}, name="run-{seed:02d}", workspace=ws) == ["run-03"]
    with pytest.raises(UsageError, match="not both"):
        submit(base, sweep={"seed": [4]}, name="x", name_keys=["seed"], workspace=ws)


def test_a_point_equal_to_a_hand_written_readied_config_is_skipped(ws, base, tasks_dir):
    from orchestration.ready import ready_files
    from orchestration.workspace import Workspace

    hand = make_config(tasks_dir, "runs/1", TRAIN, seed=1, epochs=1)  # no header, no ${}
    path = write_base(ws / "ConfigSources" / "by-hand.yaml", hand)
    [outcome] = ready_files(Workspace(ws), [path], Path.cwd(), whole=True)
    assert outcome.queued, outcome.message
    names = submit(base, sweep={"seed": [1, 2]}, workspace=ws)
    assert names == ["base-seed2"]
    assert (names.skipped[0].duplicate_of, names.skipped[0].duplicate_state) == (
        "by-hand", ExperimentState.QUEUED)  # by the config_sha256 in its run.json
