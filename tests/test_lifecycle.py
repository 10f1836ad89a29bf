"""Every transition of the lifecycle module, killed between each pair of its writes.

``crash_at(k, action)`` runs ``action`` in a forked child whose k-th filesystem write (a
file opened for writing, a rename, link, unlink, symlink or mkdir) ends it with
``os._exit``: what kill -9 at that instant leaves. For k = 1, 2, ... until the action gets
through, the test then runs ``reconcile`` (what the next worker does) and checks: the config
is in exactly one folder, its record agrees, no finished step's marker is lost, and the
experiment can still be taken to its end.
"""
from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Callable

import pytest

from orchestration import claims, lifecycle
from orchestration.failures import Failure, FailureCause
from orchestration.plan import Plan
from orchestration.ready import ready_all, ready_files
from orchestration.records.run_record import Marker, RunRecord
from orchestration.states import ExperimentState as S
from orchestration.workspace import Workspace
from tests.conftest import make_config, state_of, write_config

NAME = "exp"


def crash_at(k: int, action: Callable[[], object]) -> bool:
    """Run ``action`` in a child killed at its k-th write; True if it was killed."""
    pid = os.fork()
    if pid == 0:
        count = [0]

        def counted(real: Callable) -> Callable:
            def write(*args: object, **kwargs: object) -> object:
                count[0] += 1
                if count[0] == k:
                    os._exit(137)
                return real(*args, **kwargs)
            return write

        real_open = builtins.open

        def open_(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
            if any(c in mode for c in "wax+"):
                return counted(real_open)(file, mode, *args, **kwargs)
            return real_open(file, mode, *args, **kwargs)

        for name in ("rename", "replace", "link", "unlink", "symlink", "mkdir"):
            setattr(os, name, counted(getattr(os, name)))
        builtins.open = open_
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 137


def folders_of(ws: Workspace, name: str) -> list[S]:
    return [s for s in S if (ws.folder(s) / f"{name}.yaml").exists()]


def settle(ws: Workspace) -> S:
    """What the next worker does, then the one folder the config is in."""
    lifecycle.reconcile(ws)
    found = folders_of(ws, NAME)
    assert len(found) == 1, found
    assert not list(ws.folder(S.RUNNING).glob("*.owner.json*"))
    return found[0]


@pytest.fixture
def space(ws: Path, tasks_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace whose config ``exp`` (two steps) is in ConfigSources."""
    monkeypatch.setattr(claims, "NO_OWNER_GRACE_SECONDS", 0.0)  # a crash right after claim
    write_config(ws, NAME, make_config(tasks_dir, NAME, [{"id": "a", "method": "Ledger"},
                                                         {"id": "b", "method": "Ledger"}]))
    return Workspace(ws)


def queued(space: Workspace) -> Workspace:
    assert ready_all(space)[0].queued
    return space


def dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def claimed(space: Workspace) -> lifecycle.Claim:
    """Claimed by a worker that has died since (as the crash of the next write implies)."""
    claim = lifecycle.claim(space, space.folder(S.QUEUED) / f"{NAME}.yaml", holder=dead_pid())
    assert claim is not None
    return claim


def finish_step(ws: Workspace, task_id: str) -> Marker:
    plan = Plan.load(ws, NAME)
    marker = Marker(task_id, "Ledger", plan.snapshot, plan.inputs[task_id], 1.0, 2.0, 1.0, 1,
                    "host", {"value": 1})
    lifecycle.step_completed(plan, marker)
    return marker


def run_to_the_end(ws: Workspace) -> None:
    """From wherever the crash left it, the experiment still completes."""
    state = folders_of(ws, NAME)[0]
    if state is S.NEW:
        assert ready_all(ws)[0].queued
        state = S.QUEUED
    if state is S.QUEUED:
        assert lifecycle.claim(ws, ws.folder(S.QUEUED) / f"{NAME}.yaml", os.getpid())
        state = S.RUNNING
    if state is S.RUNNING:
        plan = Plan.load(ws, NAME)
        for task in ("a", "b"):
            if plan.finished(task) is None:
                finish_step(ws, task)
        lifecycle.complete(ws, NAME)
    assert folders_of(ws, NAME) in ([S.COMPLETED], [S.FAILED])
    record = RunRecord.load(ws.output_dir(NAME))
    assert record.state.folder == folders_of(ws, NAME)[0].folder


def every_crash(space: Workspace, prepare: Callable[[Workspace], object],
                action: Callable[[Workspace], object],
                check: Callable[[Workspace, S], None]) -> int:
    """For every write of ``action``, a fresh copy of the prepared workspace killed there."""
    import shutil

    template = space.root.with_name("template")
    prepare(space)
    shutil.copytree(space.root, template, symlinks=True)
    k = 0
    while True:
        k += 1
        shutil.rmtree(space.root)
        shutil.copytree(template, space.root, symlinks=True)
        killed = crash_at(k, lambda: action(space))
        check(space, settle(space))
        if not killed:
            return k


def test_queue_killed_anywhere_is_judged_again_by_the_next_ready(space: Workspace) -> None:
    def check(ws: Workspace, state: S) -> None:
        assert state in (S.NEW, S.QUEUED)
        run_to_the_end(ws)

    assert every_crash(space, lambda ws: None,
                       lambda ws: ready_files(ws, [ws.folder(S.NEW) / f"{NAME}.yaml"],
                                              whole=True), check) > 3


def test_reject_killed_anywhere_leaves_the_config_to_judge_again(space: Workspace) -> None:
    (space.folder(S.NEW) / f"{NAME}.yaml").write_text("tasks: [")

    def check(ws: Workspace, state: S) -> None:
        assert state in (S.NEW, S.FAILED)
        if state is S.FAILED:
            assert "not valid YAML" in ws.error_file(Path(NAME)).read_text()

    every_crash(space, lambda ws: None,
                lambda ws: ready_files(ws, [ws.folder(S.NEW) / f"{NAME}.yaml"], whole=True),
                check)


def test_claim_killed_anywhere_is_queued_again(space: Workspace) -> None:
    def check(ws: Workspace, state: S) -> None:
        assert state is S.QUEUED  # the claimer is dead: its claim goes back
        run_to_the_end(ws)

    every_crash(space, queued, lambda ws: lifecycle.claim(
        ws, ws.folder(S.QUEUED) / f"{NAME}.yaml", os.getpid()), check)


def test_step_completed_killed_anywhere_keeps_or_never_had_the_marker(space: Workspace
                                                                       ) -> None:
    def check(ws: Workspace, state: S) -> None:
        assert state is S.QUEUED
        plan = Plan.load(ws, NAME)
        marker = plan.finished("a")
        assert marker is None or marker.result == {"value": 1}  # whole, or not at all
        run_to_the_end(ws)

    every_crash(space, lambda ws: claimed(queued(ws)), lambda ws: finish_step(ws, "a"), check)


def test_complete_killed_anywhere_completes_or_runs_again(space: Workspace) -> None:
    def prepare(ws: Workspace) -> None:
        claimed(queued(ws))
        finish_step(ws, "a")
        finish_step(ws, "b")

    def check(ws: Workspace, state: S) -> None:
        assert state in (S.COMPLETED, S.QUEUED)
        plan = Plan.load(ws, NAME)
        assert plan.finished("a") and plan.finished("b")  # no finished step is lost
        run_to_the_end(ws)

    every_crash(space, prepare, lambda ws: lifecycle.complete(ws, NAME), check)


def test_fail_killed_anywhere_fails_or_runs_again(space: Workspace) -> None:
    def prepare(ws: Workspace) -> None:
        claimed(queued(ws))
        finish_step(ws, "a")

    failure = Failure(FailureCause.EXCEPTION, "ValueError at Tasks.py:3", attempt=1)

    def check(ws: Workspace, state: S) -> None:
        assert state in (S.FAILED, S.QUEUED)
        assert Plan.load(ws, NAME).finished("a")
        if state is S.FAILED:
            record = RunRecord.load(ws.output_dir(NAME))
            assert record.failure["cause"] == "exception"
            assert "ValueError" in ws.error_file(Path(NAME)).read_text()

    every_crash(space, prepare, lambda ws: lifecycle.fail(ws, NAME, "step b failed: ValueError",
                                                         failure, "b"), check)


def test_requeue_killed_anywhere_is_queued(space: Workspace) -> None:
    def prepare(ws: Workspace) -> None:
        claimed(queued(ws))
        finish_step(ws, "a")

    def check(ws: Workspace, state: S) -> None:
        assert state is S.QUEUED and Plan.load(ws, NAME).finished("a")
        run_to_the_end(ws)

    every_crash(space, prepare, lambda ws: lifecycle.requeue(
        ws, NAME, FailureCause.INTERRUPTED, "stopping"), check)


def test_retry_killed_anywhere_stays_failed_or_is_queued(space: Workspace) -> None:
    from orchestration.retry import retry

    def prepare(ws: Workspace) -> None:
        claimed(queued(ws))
        finish_step(ws, "a")
        lifecycle.fail(ws, NAME, "b failed", Failure(FailureCause.EXIT, "exit 3"), "b")

    def check(ws: Workspace, state: S) -> None:
        assert state in (S.FAILED, S.QUEUED)
        assert Plan.load(ws, NAME).finished("a")
        if state is S.QUEUED:
            run_to_the_end(ws)

    every_crash(space, prepare, lambda ws: retry(ws, NAME), check)


def test_the_loser_looking_before_the_winner_wrote_its_owner_file_stays_lost(
        space: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race another engineer found: the winner has renamed the config but not yet written
    its owner file when the loser's rename fails and the loser looks. The loser once took
    that for an NFS retry, overwrote the owner file, and both ran the experiment."""
    queued(space)
    path = space.folder(S.QUEUED) / f"{NAME}.yaml"
    real_write = claims.write_owner
    loser: list[object] = []

    def winner_writes_owner(ws: Workspace, name: str, pid: int, lease: float) -> None:
        if not loser:  # exactly between the winner's rename and its owner file
            loser.append(lifecycle.claim(space, path, holder=os.getpid() + 1))
        real_write(ws, name, pid, lease)

    monkeypatch.setattr(claims, "write_owner", winner_writes_owner)
    won = lifecycle.claim(space, path, holder=os.getpid())
    assert won is not None and won.path == space.folder(S.RUNNING) / path.name
    assert loser == [None]
    owner = claims.read_owner(claims.owner_file(space, NAME))
    assert owner is not None and owner.pid == os.getpid()
    assert state_of(space.root, NAME) == "ConfigsInProgress"


def test_a_claim_whose_owner_file_never_came_is_queued_again_after_the_grace(
        space: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """What repairs NFS reporting ENOENT for a rename that did succeed (the claimer then
    counts itself lost): no owner file past the grace period means nobody runs it."""
    queued(space)
    os.rename(space.folder(S.QUEUED) / f"{NAME}.yaml", space.folder(S.RUNNING) / f"{NAME}.yaml")
    monkeypatch.setattr(claims, "NO_OWNER_GRACE_SECONDS", 3600.0)
    assert lifecycle.reap_dead(space, 300) == []  # within the grace: its owner may be writing
    monkeypatch.setattr(claims, "NO_OWNER_GRACE_SECONDS", 0.0)
    assert lifecycle.reap_dead(space, 300) == [
        f"{NAME}: its worker died; queued again (finished steps are kept)"]
    record = RunRecord.load(space.output_dir(NAME))
    assert record.state is S.QUEUED
