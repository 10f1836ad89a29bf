"""The run-time code check, against a real git repository that changes after ``ready``."""
from __future__ import annotations

from pathlib import Path

from orchestration.records import run_record
from orchestration.records.provenance import Provenance, ProvenanceCache
from orchestration.records.run_provenance import drift, recheck
from orchestration.records.run_record import RunRecord
from tests.conftest import git


def readied(tmp_path: Path, tasks_dir: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    record = RunRecord.new("exp", {"pathToTasks": str(tasks_dir)}, [], out, b"",
                           ProvenanceCache().capture(tasks_dir), {}, [])
    run_record.write(out, record)
    return out


def apply(out: Path) -> RunRecord:
    return run_record.update(out, recheck(out))


def test_unchanged_code_records_nothing(tmp_path, tasks_dir):
    out = readied(tmp_path, tasks_dir)
    record = apply(out)
    assert record.run_provenance is None and record.warnings == []
    assert record.code_state() == record.provenance


def test_a_commit_after_ready_is_kept_and_warned_once(tmp_path, code_repo, tasks_dir):
    out = readied(tmp_path, tasks_dir)
    (tasks_dir / "Tasks.py").write_text("# changed\n")
    git(code_repo, "commit", "-q", "-am", "after ready")
    record = apply(out)
    head = git(code_repo, "rev-parse", "HEAD").strip()
    assert record.run_provenance.commit == head
    assert record.code_state().commit == head
    assert len(record.warnings) == 1 and "commit" in record.warnings[0]
    assert apply(out).warnings == record.warnings  # a second run start: no repeat


def test_drift_names_what_changed():
    base = Provenance(True, commit="a" * 40, dirty=False, patch="", untracked={})
    same = Provenance(True, commit="a" * 40, dirty=False, branch="other", remotes={"o": []})
    assert drift(base, same) == []
    assert drift(base, Provenance(True, commit="a" * 40, dirty=True, patch="p")) == [
        "dirty False -> True", "uncommitted changes differ"]
    assert drift(base, Provenance(True, commit="b" * 40, dirty=False)) == [
        f"commit {'a' * 12} -> {'b' * 12}"]
    gone = drift(base, Provenance.unavailable("/x is not inside a git repository."))
    assert gone == ["code state at run start could not be captured: "
                    "/x is not inside a git repository."]
    assert drift(Provenance(False), Provenance.unavailable("w")) == []
