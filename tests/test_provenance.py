"""Git provenance and environment records, against real throwaway git repositories."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from orchestration.exceptions import ProvenanceError
from orchestration.records import provenance
from orchestration.records.environment import capture_environment, environment_diff
from orchestration.records.provenance import (
    Provenance,
    ProvenanceCache,
    code_diff,
    compare_remote,
    materialize,
)

BINARY = bytes(range(256)) * 8


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's git settings (prefixes, hooks, safe.directory) out of the tests."""
    config = tmp_path_factory.mktemp("home") / "gitconfig"
    config.write_text("[user]\n\tname = Test\n\temail = test@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_all(repo: Path, message: str = "change") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo on branch main whose experiments/ folder holds Tasks.py."""
    root = tmp_path / "repo"
    (root / "experiments").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "experiments" / "Tasks.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("*.log\n")
    commit_all(root, "first")
    return root


def capture(path: Path) -> Provenance:
    return ProvenanceCache().capture(path)


def test_clean_repo_records_commit_and_branch(repo: Path) -> None:
    prov = capture(repo / "experiments")
    assert prov.available is True
    assert prov.dirty is False
    assert prov.commit == git(repo, "rev-parse", "HEAD")
    assert prov.branch == "main"
    assert prov.repo_root == str(repo.resolve())
    assert prov.tasks_subdir == "experiments"
    assert (prov.patch, prov.untracked, prov.untracked_skipped) == ("", {}, [])
    json.dumps(prov.to_json())


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    assert capture(repo).branch is None


def test_tracked_edit_is_dirty_and_in_patch(repo: Path) -> None:
    (repo / "experiments" / "Tasks.py").write_text("x = 1\nlearning_rate = 0.3\n")
    prov = capture(repo / "experiments")
    assert prov.dirty is True
    assert "+learning_rate = 0.3" in prov.patch


def test_untracked_file_is_dirty_and_recorded(repo: Path) -> None:
    (repo / "experiments" / "helper.py").write_text("y = 2\n")
    prov = capture(repo / "experiments")
    assert prov.dirty is True
    assert base64.b64decode(prov.untracked["experiments/helper.py"]) == b"y = 2\n"


def test_ignored_file_is_neither_recorded_nor_dirty(repo: Path) -> None:
    (repo / "experiments" / "run.log").write_text("noise\n")
    prov = capture(repo / "experiments")
    assert prov.dirty is False
    assert prov.untracked == {}


def test_bytecode_caches_keep_a_clean_repo_clean(repo: Path) -> None:
    cache = repo / "experiments" / "__pycache__"
    cache.mkdir()
    (cache / "Tasks.cpython-311.pyc").write_bytes(b"\x00pyc")
    (repo / "stray.pyc").write_bytes(b"\x00pyc")
    prov = capture(repo / "experiments")
    assert prov.dirty is False
    assert prov.untracked == {}


def test_oversized_untracked_file_is_skipped_with_warning(repo: Path) -> None:
    (repo / "big.bin").write_bytes(b"\0" * (provenance.FILE_CAP + 1))
    prov = capture(repo)
    assert prov.dirty is True
    assert prov.untracked_skipped == ["big.bin"]
    assert any("size caps" in w for w in prov.warnings)


def test_folder_outside_git_has_no_provenance(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    prov = capture(folder)
    assert prov.available is False
    assert "not inside a git repository" in prov.warnings[0]


def test_repo_without_commits_has_no_provenance(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    prov = capture(tmp_path)
    assert prov.available is False
    assert "no commits yet" in prov.warnings[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_repo_git_refuses_has_no_provenance(repo: Path) -> None:
    os.chown(repo, 12345, 12345)  # git then refuses it as "dubious ownership"
    prov = capture(repo)
    assert prov.available is False
    assert "safe.directory" in prov.warnings[0]


def test_cache_runs_git_once_per_repository(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = provenance._capture_repo

    def counting(*args: object) -> dict:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(provenance, "_capture_repo", counting)
    (repo / "other").mkdir()
    cache = ProvenanceCache()
    first, second = cache.capture(repo / "experiments"), cache.capture(repo / "other")
    assert len(calls) == 1
    assert (first.tasks_subdir, second.tasks_subdir) == ("experiments", "other")
    assert first.commit == second.commit


def test_materialize_rebuilds_reverted_edit_and_leaves_user_tree_alone(
    repo: Path, tmp_path: Path
) -> None:
    tasks = repo / "experiments" / "Tasks.py"
    tasks.write_text("x = 42\n")
    (repo / "experiments" / "new.py").write_text("z = 3\n")
    prov = capture(repo / "experiments")
    git(repo, "checkout", "--", "experiments/Tasks.py")  # the user moves on
    (repo / "experiments" / "new.py").unlink()
    before = git(repo, "status", "--porcelain")

    folder = materialize(prov, tmp_path / "rebuilt")
    assert folder == (tmp_path / "rebuilt" / "experiments").resolve()
    assert (folder / "Tasks.py").read_text() == "x = 42\n"
    assert (folder / "new.py").read_text() == "z = 3\n"
    assert tasks.read_text() == "x = 1\n"
    assert git(repo, "status", "--porcelain") == before
    assert materialize(prov, tmp_path / "rebuilt") == folder  # reused, not rebuilt


def test_materialize_restarts_a_build_whose_process_died(repo: Path, tmp_path: Path) -> None:
    prov = capture(repo / "experiments")
    folder = materialize(prov, tmp_path / "rebuilt")
    marker = Path(git(folder, "rev-parse", "--absolute-git-dir"), provenance._MARKER)
    dead = subprocess.Popen(["true"])
    dead.wait()
    marker.write_text(f"building {socket.gethostname()} {dead.pid}")
    (folder / "Tasks.py").unlink()
    assert materialize(prov, tmp_path / "rebuilt") == folder
    assert (folder / "Tasks.py").read_text() == "x = 1\n"

    marker.write_text(f"building {socket.gethostname()} {os.getpid()}")  # still running
    with pytest.raises(ProvenanceError, match="another process"):
        materialize(prov, tmp_path / "rebuilt")


def test_binary_change_survives_materialize(repo: Path, tmp_path: Path) -> None:
    (repo / "weights.bin").write_bytes(BINARY)
    commit_all(repo)
    changed = BINARY[::-1] + b"\r\n\0tail"
    (repo / "weights.bin").write_bytes(changed)
    (repo / "extra.bin").write_bytes(b"\xff\x00\xfe")
    prov = capture(repo)
    assert "GIT binary patch" in prov.patch

    folder = materialize(Provenance.from_json(json.loads(json.dumps(prov.to_json()))),
                         tmp_path / "rebuilt")
    assert (folder / "weights.bin").read_bytes() == changed
    assert (folder / "extra.bin").read_bytes() == b"\xff\x00\xfe"


@pytest.mark.parametrize("bad", ["../escape.py", "/tmp/abs.py", "a/../../x.py", ".git/hooks/x"])
def test_tampered_untracked_path_is_refused(repo: Path, tmp_path: Path, bad: str) -> None:
    prov = dataclasses.replace(capture(repo),
                               untracked={bad: base64.b64encode(b"evil").decode()})
    with pytest.raises(ProvenanceError, match="tampered"):
        materialize(prov, tmp_path / "rebuilt")
    assert not (tmp_path / "rebuilt").exists()
    assert not (tmp_path / "escape.py").exists()


def test_materialize_refuses_missing_commit_and_missing_provenance(
    repo: Path, tmp_path: Path
) -> None:
    prov = capture(repo)
    with pytest.raises(ProvenanceError, match="not in"):
        materialize(dataclasses.replace(prov, commit="0" * 40), tmp_path / "a")
    with pytest.raises(ProvenanceError, match="not a git commit id"):
        materialize(dataclasses.replace(prov, commit="--output=/tmp/x"), tmp_path / "b")
    with pytest.raises(ProvenanceError, match="no git provenance"):
        materialize(capture(tmp_path), tmp_path / "c")
    with pytest.raises(ProvenanceError, match="gone"):
        materialize(dataclasses.replace(prov, repo_root=str(tmp_path / "nowhere")),
                    tmp_path / "d")


def test_code_diff_between_commits(repo: Path) -> None:
    old = capture(repo / "experiments")
    (repo / "experiments" / "Tasks.py").write_text("x = 2\n")
    commit_all(repo)
    new = capture(repo / "experiments")
    diff = code_diff(old, new)
    assert "--- a/experiments/Tasks.py" in diff
    assert "-x = 1" in diff and "+x = 2" in diff
    assert code_diff(new, new) == ""


def test_code_diff_includes_uncommitted_patch_and_cleans_up(repo: Path) -> None:
    old = capture(repo / "experiments")
    (repo / "experiments" / "Tasks.py").write_text("x = 1\nepochs = 7\n")
    (repo / "experiments" / "notes.txt").write_text("try more epochs\n")
    new = capture(repo / "experiments")
    diff = code_diff(old, new)
    assert "+++ b/experiments/Tasks.py" in diff
    assert "+epochs = 7" in diff
    assert "diff --git a/experiments/notes.txt b/experiments/notes.txt" in diff
    assert "+try more epochs" in diff
    assert ".git" not in diff.replace(".gitignore", "")
    assert len(git(repo, "worktree", "list").splitlines()) == 1


def test_code_diff_without_provenance_explains(repo: Path, tmp_path: Path) -> None:
    text = code_diff(capture(tmp_path), capture(repo))
    assert text.startswith("no code diff: run A has no git provenance")
    assert text.count("\n") == 1


def test_compare_remote_accepts_ssh_and_https_forms(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "git@github.com:Me/proj.git")
    git(repo, "remote", "add", "mirror", "https://user:secret@example.org/me/proj.git")
    prov = capture(repo)
    assert "secret" not in json.dumps(prov.to_json())
    for same in ("https://github.com/Me/proj", "https://GitHub.com/Me/proj.git/", "Me/proj",
                 "ssh://git@github.com/Me/proj.git"):
        assert compare_remote(prov, same) is None, same
    warning = compare_remote(prov, "https://github.com/someone/else")
    assert warning and "someone/else" in warning
    assert compare_remote(Provenance.unavailable("x"), "me/proj") is None


def test_environment_capture_and_diff() -> None:
    env = capture_environment()
    assert env["python"].count(".") == 2
    assert "gitpython" in env["packages"]
    json.dumps(env)
    a = {"python": "3.11.7", "packages": {"numpy": "1.26.0", "scipy": "1.11", "same": "1"}}
    b = {"python": "3.12.1", "packages": {"numpy": "2.0.1", "torch": "2.3.0", "same": "1"}}
    assert environment_diff(a, b) == [
        "python: 3.11.7 -> 3.12.1", "numpy: 1.26.0 -> 2.0.1", "- scipy 1.11", "+ torch 2.3.0",
    ]
    assert environment_diff(env, env) == []
