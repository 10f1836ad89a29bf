"""``submit`` through the installed CLI: sweeps into ConfigSources, duplicates skipped, ready."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

from orchestration import submit
from tests.conftest import make_config, run_cli, state_of

REPO = Path(__file__).resolve().parents[2]
GRID = ["--sweep", "lr=0.01,0.1", "--sweep", "seed=1,2,3"]
NAMES = [f"base-lr{lr}-seed{seed}" for lr in ("0.01", "0.1") for seed in (1, 2, 3)]


def write_base(tmp_path: Path, tasks_dir: Path, text: str | None = None) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(make_config(
        tasks_dir, "sweep/lr-${lr}-seed-${seed}", [{"id": "train", "method": "Ledger"}],
        lr=0.5, seed=0, optimizer={"name": "sgd", "lr": 0.5}), sort_keys=False))
    return path


def sources(ws: Path) -> list[str]:
    return sorted(p.stem for p in (ws / "ConfigSources").glob("*.yaml"))


def record(ws: Path, name: str) -> dict:
    return json.loads((ws / "Misc" / "experiments" / name / "run.json").read_text())


def test_grid_of_six_lands_in_six_folders_and_resubmitting_skips_all(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    first = run_cli("submit", str(base), *GRID, ws=ws)
    assert first.returncode == 0, first.stderr
    assert "6 written, 0 skipped" in first.stdout
    assert sources(ws) == sorted(NAMES)
    text = (ws / "ConfigSources" / "base-lr0.1-seed2.yaml").read_text()
    assert "outputDir: sweep/lr-${lr}-seed-${seed}" in text and "lr: 0.1\n" in text

    again = run_cli("submit", str(base), *GRID, ws=ws)  # duplicates of configs not readied yet
    assert again.returncode == 3, again.stderr  # nothing written: a script must not take it for work
    assert "0 written, 6 skipped as duplicates" in again.stdout
    assert "base-lr0.1-seed2: skipped, identical to base-lr0.1-seed2 (new" in again.stdout

    ready = run_cli("ready", ws=ws, cwd=tmp_path)
    assert ready.returncode == 0, ready.stderr
    assert "6 queued, 0 rejected" in ready.stdout
    assert all(state_of(ws, name) == "ConfigsToRun" for name in NAMES)
    outputs = {record(ws, name)["output_dir"] for name in NAMES}
    assert outputs == {str(ws / "Output" / "sweep" / f"lr-{lr}-seed-{seed}")
                       for lr in ("0.01", "0.1") for seed in (1, 2, 3)}
    assert record(ws, "base-lr0.01-seed3")["config"]["seed"] == 3

    third = run_cli("submit", str(base), *GRID, ws=ws)  # duplicates of queued experiments
    assert third.returncode == 3
    assert "0 written, 6 skipped as duplicates" in third.stdout
    assert "(queued, in ConfigsToRun/)" in third.stdout
    assert sources(ws) == []


def test_set_nested_key_plus_key_range_and_ready_only_the_written(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    other = ws / "ConfigSources" / "unrelated.yaml"
    other.write_text(yaml.safe_dump(make_config(tasks_dir, "other", [
        {"id": "train", "method": "Ledger"}])))
    result = run_cli("submit", str(base), "--set", "optimizer.lr=0.01", "--set", "+extra=abc",
                     "--sweep", "seed=range(1,4)", "--ready", ws=ws)
    assert result.returncode == 0, result.stderr
    names = [f"base-seed{seed}" for seed in (1, 2, 3)]  # --set keys are not in the names
    assert "3 queued, 0 rejected" in result.stdout
    assert all(state_of(ws, name) == "ConfigsToRun" for name in names)
    assert state_of(ws, "unrelated") == "ConfigSources"
    config = record(ws, names[1])["config"]
    assert config["optimizer"] == {"name": "sgd", "lr": 0.01}
    assert config["extra"] == "abc" and config["seed"] == 2 and config["lr"] == 0.5
    assert config["outputDir"] == "sweep/lr-0.5-seed-2"


def test_typo_in_a_sweep_key_is_an_error_and_writes_nothing(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    result = run_cli("submit", str(base), "--sweep", "lrr=0.01,0.1", "--sweep", "seed=1,2",
                     ws=ws)
    assert result.returncode == 2
    assert "error: lrr (in lrr=0.01,0.1): no such key" in result.stderr
    assert "did you mean lr?" in result.stderr and "+lrr=" in result.stderr
    assert "Traceback" not in result.stderr
    assert sources(ws) == [] and not list((ws / "ConfigSources").iterdir())


def test_dry_run_lists_the_names_and_writes_nothing(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    result = run_cli("submit", str(base), *GRID, "--dry-run", "--ready", ws=ws)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()[:6]] == NAMES
    assert "6 to write, 0 skipped as duplicates (dry run: nothing written)" in result.stdout
    assert all(not list((ws / folder).iterdir()) for folder in
               ("ConfigSources", "ConfigsToRun", "ConfigsFailed", "Output"))


def test_a_base_with_a_python_tag_is_refused(ws, tmp_path):
    base = write_base(tmp_path, Path("."), "githubRepository: x\npathToTasks: .\n"
                      "outputDir: !!python/object/apply:os.system ['echo hacked']\n"
                      "tasks: [{id: a, method: A}]\n")
    result = run_cli("submit", str(base), ws=ws)
    assert result.returncode == 2
    assert "Python object tag" in result.stderr or "!!python" in result.stderr
    assert sources(ws) == []


def test_python_api_returns_the_names_the_cli_writes(tmp_path, tasks_dir):
    from orchestration.workspace import Workspace

    cli_ws, api_ws = tmp_path / "cli", tmp_path / "api"
    Workspace(cli_ws).init()
    Workspace(api_ws).init()
    base = write_base(tmp_path, tasks_dir)
    cli = run_cli("submit", str(base), "--set", "optimizer.name=adam", "--sweep",
                  "lr=0.01,0.1", "--sweep", "seed=range(1,4)", ws=cli_ws)
    assert cli.returncode == 0, cli.stderr
    names = submit(base, overrides=["optimizer.name=adam"],
                   sweep={"lr": [0.01, 0.1], "seed": [1, 2, 3]}, workspace=api_ws)
    assert names == [line.split(":")[0] for line in cli.stdout.splitlines()[:6]]
    assert sorted(names) == sources(cli_ws) == sources(api_ws)
    again = submit(base, overrides={"optimizer.name": "adam"},
                   sweep=["lr=0.01,0.1", "seed=range(1,4)"], workspace=str(api_ws))
    assert again == [] and [p.name for p in again.skipped] == names


def test_a_thousand_points_take_seconds(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    timings = []
    for expect, code in (("1000 written, 0 skipped", 0), ("0 written, 1000 skipped", 3)):
        start = time.monotonic()
        result = run_cli("submit", str(base), "--sweep", "seed=range(0,1000)", ws=ws)
        timings.append(time.monotonic() - start)
        assert result.returncode == code, result.stderr
        assert expect in result.stdout
    print(f"submit 1000 points: {timings[0]:.1f} s, resubmit (all skipped): "
          f"{timings[1]:.1f} s")
    assert sources(ws) == [f"base-seed{seed:03d}" for seed in range(1000)]  # sweep order
    assert max(timings) < 30


def test_the_demo_sweep_from_the_readme(ws):
    result = run_cli("submit", "demo/sweep.yaml", *GRID, "--ready", ws=ws, cwd=REPO,
                     env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr
    assert "6 queued, 0 rejected" in result.stdout
    folders = sorted(os.listdir(ws / "Output" / "sweep"))
    assert folders == sorted(f"lr-{lr}-seed-{seed}" for lr in ("0.01", "0.1")
                             for seed in (1, 2, 3))


def test_set_with_a_sweep_value_and_bad_names_are_usage_errors(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    for args, message in (
            (["--set", "lr=0.1,0.2"], "use --sweep lr=0.1,0.2"),
            (["--sweep", "lr=0.1,0.2", "--sweep", "seed=1,2", "--name", "run-{lr}"],
             "--name 'run-{lr}' leaves out seed"),
            (["--sweep", "lr=0.1", "--name", "run/{lr}"], "characters a name may not hold"),
            (["--sweep", "lr=0.1", "--name-keys", "lr,sed"], "'sed' is not a key"),
            (["--sweep", "seed=1,2", "--set", "+outputDir=x"], "already has this key"),
            (["--sweep", "lr=0.1", "--name", "x", "--name-keys", "lr"], "not allowed with")):
        result = run_cli("submit", str(base), *args, ws=ws)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    assert sources(ws) == []


def test_name_keys_and_templates_name_the_points(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir)
    keys = run_cli("submit", str(base), "--set", "optimizer.name=adam", "--sweep",
                   "seed=2,10", "--name-keys", "name,seed", ws=ws)
    assert keys.returncode == 0, keys.stderr
    template = run_cli("submit", str(base), "--sweep", "lr=0.5,2", "--set", "optimizer.lr=0.1",
                       "--name", "sweep-{lr}-{optimizer.lr:.0e}", ws=ws)
    assert template.returncode == 0, template.stderr
    assert sources(ws) == ["base-name_adam-seed02", "base-name_adam-seed10",
                           "sweep-0.5-1e-01", "sweep-2-1e-01"]


def test_an_output_dir_collision_is_refused_before_writing(ws, tasks_dir, tmp_path):
    base = write_base(tmp_path, tasks_dir, yaml.safe_dump(make_config(
        tasks_dir, "sweep/lr-${lr}", [{"id": "train", "method": "Ledger"}], lr=0.5, seed=0)))
    for extra in (["--dry-run"], []):
        result = run_cli("submit", str(base), *GRID, *extra, ws=ws)
        assert result.returncode == 2
        assert ("both write into outputDir sweep/lr-0.01: outputDir sweep/lr-${lr} lacks "
                "seed; put ${seed} into it") in result.stderr
    assert sources(ws) == []
