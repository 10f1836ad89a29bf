"""pipeline.execute in-process: a step's claim on its experiment when other processes race
for the same config (``luigi --workers N`` starts two root steps of one experiment at once)."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration import claims
from orchestration.exceptions import OrchestrationError
from orchestration.pipeline.execute import ensure_claimed
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


def _rival_claims_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process renames the config into ConfigsInProgress just before we do."""
    real_claim = claims.claim

    def claim(ws: Workspace, path: Path, **kwargs: object) -> Path | None:
        monkeypatch.setattr(claims, "claim", real_claim)
        assert real_claim(ws, path, pid=1) is not None
        return real_claim(ws, path, **kwargs)

    monkeypatch.setattr(claims, "claim", claim)


def _caught_between_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our first look finds the config in no folder: it was being renamed meanwhile."""
    real_find = Workspace.find

    def find(self: Workspace, name: str) -> tuple[ExperimentState, Path] | None:
        monkeypatch.setattr(Workspace, "find", real_find)
        return None

    monkeypatch.setattr(Workspace, "find", find)


@pytest.mark.parametrize("race", [_rival_claims_first, _caught_between_folders],
                         ids=["lost-the-claim", "between-folders"])
def test_a_step_that_loses_the_claim_race_runs_on(queued: Workspace,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  race) -> None:
    race(monkeypatch)
    assert ensure_claimed(queued, "exp") == queued.folder(ExperimentState.RUNNING) / "exp.yaml"
    assert state_of(queued.root, "exp") == "ConfigsInProgress"


def test_a_failed_experiment_is_not_claimed(queued: Workspace) -> None:
    queued.fail(queued.folder(ExperimentState.QUEUED) / "exp.yaml", "broken")
    with pytest.raises(OrchestrationError, match="is failed.*job-orchestration retry"):
        ensure_claimed(queued, "exp")
    assert state_of(queued.root, "exp") == "ConfigsFailed"
