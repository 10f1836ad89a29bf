"""Provenance through the installed CLI: show, diff, rerun, results, and the run-time check,
against real git repositories whose code changes between runs."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from tests.conftest import git, make_config, run_cli, state_of, write_config

CONSTANT_TASKS = '''\
from orchestration import TaskBase

CONSTANT = "v1"


class WriteConstant(TaskBase):
    """Writes CONSTANT to a file: which code ran is visible in the output."""

    def run(self):
        (self.output_dir / "constant.txt").write_text(CONSTANT)
        return {"constant": CONSTANT, "lr": self.config["lr"]}
'''
WRITE = [{"id": "write", "method": "WriteConstant"}]


@pytest.fixture
def const_dir(code_repo: Path) -> Path:
    """A committed ``consts/`` folder whose Tasks.py writes ``CONSTANT``."""
    folder = code_repo / "consts"
    folder.mkdir()
    (folder / "Tasks.py").write_text(CONSTANT_TASKS)
    git(code_repo, "add", "-A")
    git(code_repo, "commit", "-q", "-m", "constant tasks")
    return folder


def set_constant(folder: Path, value: str) -> None:
    path = folder / "Tasks.py"
    path.write_text(path.read_text().replace('CONSTANT = "v1"', f'CONSTANT = "{value}"'))


def ok(*args: str, ws: Path) -> str:
    proc = run_cli(*args, ws=ws)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def run_experiment(ws: Path, name: str, folder: Path, lr: float = 0.1) -> None:
    write_config(ws, name, make_config(folder, f"runs/{name}", WRITE, lr=lr))
    ok("ready", ws=ws)
    ok("worker", "--exit-when-empty", ws=ws)
    assert state_of(ws, name) == "ConfigsCompleted"


def tree_hash(root: Path) -> str:
    """Names, kinds and bytes of everything under ``root``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()


def test_show_reports_head_and_the_dirty_flag(ws, const_dir, code_repo):
    run_experiment(ws, "clean", const_dir)
    info = json.loads(ok("show", "clean", "--json", ws=ws))
    assert info["commit"] == git(code_repo, "rev-parse", "HEAD").strip()
    assert info["dirty"] is False
    assert info["state"] == "completed"
    assert info["output_dir"] == str(ws / "Output" / "runs" / "clean")
    assert info["tasks"][0]["id"] == "write" and info["tasks"][0]["method"] == "WriteConstant"
    assert info["tasks"][0]["state"] == "completed" and info["tasks"][0]["seconds"] >= 0
    assert info["config"]["lr"] == 0.1
    text = ok("show", "clean", ws=ws)
    assert info["commit"] in text and "branch:  main" in text and "dirty:   no" in text
    assert str(ws / "Output" / "runs" / "clean" / "logs" / "write.log") in text

    set_constant(const_dir, "edited")  # uncommitted
    run_experiment(ws, "dirty", const_dir)
    info = json.loads(ok("show", "dirty", "--json", ws=ws))
    assert info["dirty"] is True
    assert "dirty:   yes" in ok("show", "dirty", ws=ws)


def test_diff_shows_config_and_code_changes(ws, const_dir, code_repo):
    run_experiment(ws, "old", const_dir, lr=0.1)
    set_constant(const_dir, "v2")
    git(code_repo, "commit", "-q", "-am", "v2")
    run_experiment(ws, "new", const_dir, lr=0.2)
    out = ok("diff", "old", "new", ws=ws)
    assert "lr: 0.1 -> 0.2" in out
    assert '-CONSTANT = "v1"' in out and '+CONSTANT = "v2"' in out
    assert "consts/Tasks.py" in out
    config_part = out.split("code:")[0]
    assert config_part.rstrip().splitlines()[-1].strip().startswith("outputDir:")  # last


def test_rerun_runs_the_old_code_and_keeps_the_original(ws, const_dir, code_repo):
    run_experiment(ws, "first", const_dir)
    original = ws / "Output" / "runs" / "first"
    before = tree_hash(original)
    set_constant(const_dir, "v2")
    git(code_repo, "commit", "-q", "-am", "v2")

    out = ok("rerun", "first", ws=ws)
    assert out.splitlines()[0] == "first-rerun-1"
    assert state_of(ws, "first-rerun-1") == "ConfigsToRun"
    ok("worker", "--exit-when-empty", ws=ws)
    rerun_out = ws / "Output" / "runs" / "first-rerun-1"
    assert (rerun_out / "constant.txt").read_text() == "v1"
    assert tree_hash(original) == before
    # the user's tree was not touched, and the rebuilt code lives under Misc/worktrees
    assert (const_dir / "Tasks.py").read_text().count('"v2"') == 1
    assert git(code_repo, "status", "--porcelain").strip() == ""
    info = json.loads(ok("show", "first-rerun-1", "--json", ws=ws))
    assert info["config"]["pathToTasks"].startswith(str(ws / "Misc" / "worktrees" / "first-"))
    assert info["config"]["pathToTasks"].endswith("/consts")
    assert "code:\n  no differences" in ok("diff", "first", "first-rerun-1", ws=ws)
    # a second rerun takes the next number and reuses the worktree
    assert ok("rerun", "first", ws=ws).splitlines()[0] == "first-rerun-2"
    assert len(list((ws / "Misc" / "worktrees").iterdir())) == 1


def test_rerun_of_an_uncommitted_edit_since_reverted(ws, const_dir, code_repo):
    set_constant(const_dir, "uncommitted")
    (const_dir / "notes.txt").write_text("untracked\n")
    run_experiment(ws, "edit", const_dir)
    original = ws / "Output" / "runs" / "edit"
    before = tree_hash(original)
    git(code_repo, "checkout", "--", ".")
    (const_dir / "notes.txt").unlink()

    name = ok("rerun", "edit", ws=ws).splitlines()[0]
    assert name == "edit-rerun-1"
    ok("worker", "--exit-when-empty", ws=ws)
    assert (ws / "Output" / "runs" / name / "constant.txt").read_text() == "uncommitted"
    worktree = Path(json.loads(ok("show", name, "--json", ws=ws))["config"]["pathToTasks"])
    assert (worktree / "notes.txt").read_text() == "untracked\n"
    assert tree_hash(original) == before
    assert git(code_repo, "status", "--porcelain").strip() == ""


def test_results_table_csv_json_where_and_the_python_api(ws, const_dir):
    for lr in (0.1, 0.2, 0.3):
        write_config(ws, f"lr-{lr}", make_config(const_dir, f"sweep/lr-{lr}", WRITE, lr=lr,
                                                 seed=1))
    ok("ready", ws=ws)
    ok("worker", "--exit-when-empty", ws=ws)

    rows = json.loads(ok("results", "--format", "json", ws=ws))
    assert rows == [{"name": f"lr-{lr}", "state": "completed", "config": {"lr": lr},
                     "results": {"write": {"constant": "v1", "lr": lr}}}
                    for lr in (0.1, 0.2, 0.3)]
    table = ok("results", ws=ws)
    for needle in ("lr-0.2", "completed", "write.constant", "write.lr", "0.3"):
        assert needle in table
    parsed = list(csv.DictReader(io.StringIO(ok("results", "--format", "csv", ws=ws))))
    assert [r["name"] for r in parsed] == ["lr-0.1", "lr-0.2", "lr-0.3"]
    assert parsed[1] == {"name": "lr-0.2", "state": "completed", "lr": "0.2",
                         "write.constant": "v1", "write.lr": "0.2"}

    picked = json.loads(ok("results", "--format", "json", "--where", "lr=0.2", ws=ws))
    assert [r["name"] for r in picked] == ["lr-0.2"]
    assert json.loads(ok("results", "--format", "json", "--where", "lr=0.4", ws=ws)) == []
    assert json.loads(ok("results", "--format", "json", "--where", "lr='0.2'", ws=ws)) == []
    both = json.loads(ok("results", "--format", "json", "--where", "seed=1",
                         "--where", "state=completed", ws=ws))
    assert len(both) == 3
    bad = run_cli("results", "--where", "lr", ws=ws)
    assert bad.returncode == 2 and "error: --where 'lr'" in bad.stderr

    from orchestration import results

    assert results(workspace=str(ws)) == rows
    assert results(workspace=ws, where={"lr": 0.2}) == picked


def test_without_git_the_run_works_and_show_says_no_provenance(ws, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "Tasks.py").write_text(CONSTANT_TASKS)
    run_experiment(ws, "nogit", plain)
    assert (ws / "Output" / "runs" / "nogit" / "constant.txt").read_text() == "v1"
    info = json.loads(ok("show", "nogit", "--json", ws=ws))
    assert info["commit"] is None and info["provenance"] is False
    assert "no provenance" in ok("show", "nogit", ws=ws)
    rerun = run_cli("rerun", "nogit", ws=ws)
    assert rerun.returncode == 2
    assert rerun.stderr.startswith("error: nogit has no git provenance")
    assert "Traceback" not in rerun.stderr


def test_a_commit_between_ready_and_run_is_flagged(ws, const_dir, code_repo):
    write_config(ws, "late", make_config(const_dir, "runs/late", WRITE, lr=0.1))
    ok("ready", ws=ws)
    readied = git(code_repo, "rev-parse", "HEAD").strip()
    set_constant(const_dir, "v2")
    git(code_repo, "commit", "-q", "-am", "v2 after ready")
    ok("worker", "--exit-when-empty", ws=ws)

    record = json.loads((ws / "Output" / "runs" / "late" / "run.json").read_text())
    assert record["provenance"]["commit"] == readied
    assert record["run_provenance"]["commit"] == git(code_repo, "rev-parse", "HEAD").strip()
    info = json.loads(ok("show", "late", "--json", ws=ws))
    assert any("changed between ready and the start of the run" in w for w in info["warnings"])
    # what ran was v2, and rerun rebuilds what ran
    assert (ws / "Output" / "runs" / "late" / "constant.txt").read_text() == "v2"
    ok("rerun", "late", ws=ws)
    ok("worker", "--exit-when-empty", ws=ws)
    assert (ws / "Output" / "runs" / "late-rerun-1" / "constant.txt").read_text() == "v2"


def test_unknown_names_are_usage_errors(ws):
    for args in (("diff", "a", "b"), ("rerun", "a"), ("show", "a")):
        proc = run_cli(*args, ws=ws)
        assert proc.returncode == 2 and proc.stderr.startswith("error: no experiment named")

