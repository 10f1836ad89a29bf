"""claims in-process: of workers racing for one queued config exactly one gets it, whatever
the order in which their renames and owner files land."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestration import claims
from orchestration.ready import ready_all
from orchestration.states import ExperimentState
from orchestration.workspace import Workspace
from tests.conftest import make_config, state_of, write_config


@pytest.fixture
def queued(ws: Path, tasks_dir: Path) -> Workspace:
    """A workspace holding one readied experiment, ``exp``."""
    write_config(ws, "exp", make_config(tasks_dir, "exp", [{"id": "a", "method": "Ledger"}]))
    assert all(outcome.queued for outcome in ready_all(Workspace(ws)))
    return Workspace(ws)


def test_the_loser_looking_before_the_winner_wrote_its_owner_file_stays_lost(
        queued: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race another engineer found: the winner has renamed the config but not yet written
    its owner file when the loser's rename fails and the loser looks. The loser once took
    that for an NFS retry, overwrote the owner file, and both ran the experiment."""
    path = queued.folder(ExperimentState.QUEUED) / "exp.yaml"
    real_write = claims.atomic_write_json
    loser: list[Path | None] = []

    def winner_writes_owner(target: Path, data: dict, durable: bool = True) -> None:
        if not loser:  # exactly between the winner's rename and its owner file
            loser.append(claims.claim(queued, path, pid=os.getpid() + 1))
        real_write(target, data, durable)

    monkeypatch.setattr(claims, "atomic_write_json", winner_writes_owner)
    assert claims.claim(queued, path, pid=os.getpid()) == queued.folder(ExperimentState.RUNNING) / path.name
    assert loser == [None]
    owner = claims.read_owner(claims.owner_file(queued, "exp"))
    assert owner is not None and owner.pid == os.getpid()
    assert state_of(queued.root, "exp") == "ConfigsInProgress"


def test_a_claim_whose_owner_file_never_came_is_queued_again_after_the_grace(
        queued: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """What repairs NFS reporting ENOENT for a rename that did succeed (the claimer then
    counts itself lost): no owner file past the grace period means nobody runs it."""
    os.rename(queued.folder(ExperimentState.QUEUED) / "exp.yaml", queued.folder(ExperimentState.RUNNING) / "exp.yaml")
    assert claims.requeue_dead(queued) == []  # within the grace: its owner may be writing
    monkeypatch.setattr(claims, "NO_OWNER_GRACE_SECONDS", 0.0)
    assert claims.requeue_dead(queued) == ["exp"]
    assert state_of(queued.root, "exp") == "ConfigsToRun"
