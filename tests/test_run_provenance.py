"""The run-time code check, against a real git repository that changes after ``ready``."""
from __future__ import annotations

from pathlib import Path

from orchestration.records import run_record
from orchestration.records.provenance import ProvenanceCache
from orchestration.records.run_provenance import code_state, drift, recheck
from tests.conftest import git


def readied(tmp_path: Path, tasks_dir: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    run_record.write(out, {"config": {"pathToTasks": str(tasks_dir)}, "warnings": [],
                           "provenance": ProvenanceCache().capture(tasks_dir)})
    return out


def apply(out: Path) -> dict:
    return run_record.update(out, recheck(out))


def test_unchanged_code_records_nothing(tmp_path, tasks_dir):
    out = readied(tmp_path, tasks_dir)
    record = apply(out)
    assert "run_provenance" not in record and record["warnings"] == []
    assert code_state(record) == record["provenance"]


def test_a_commit_after_ready_is_kept_and_warned_once(tmp_path, code_repo, tasks_dir):
    out = readied(tmp_path, tasks_dir)
    (tasks_dir / "Tasks.py").write_text("# changed\n")
    git(code_repo, "commit", "-q", "-am", "after ready")
    record = apply(out)
    head = git(code_repo, "rev-parse", "HEAD").strip()
    assert record["run_provenance"]["commit"] == head
    assert code_state(record)["commit"] == head
    assert len(record["warnings"]) == 1 and "commit" in record["warnings"][0]
    assert apply(out)["warnings"] == record["warnings"]  # a second run start: no repeat


def test_drift_names_what_changed():
    base = {"available": True, "commit": "a" * 40, "dirty": False, "patch": "", "untracked": {}}
    assert drift(base, dict(base, branch="other", remotes={"o": []})) == []
    assert drift(base, dict(base, dirty=True, patch="p")) == [
        "dirty False -> True", "uncommitted changes differ"]
    assert drift(base, dict(base, commit="b" * 40)) == [f"commit {'a' * 12} -> {'b' * 12}"]
    gone = drift(base, {"available": False, "warnings": ["/x is not inside a git repository."]})
    assert gone == ["code state at run start could not be captured: "
                    "/x is not inside a git repository."]
    assert drift({"available": False}, {"available": False, "warnings": ["w"]}) == []
