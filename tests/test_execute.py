"""A Luigi run's claim on its experiment when other processes race for the same config
(``luigi --workers N`` starts two root steps of one experiment at once)."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestration import lifecycle
from orchestration.exceptions import OrchestrationError
from orchestration.failures import Failure, FailureCause
from orchestration.pipeline.luigi_tasks import ensure_claimed
from orchestration.plan import Plan
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
    real_claim = lifecycle.claim

    def claim(ws: Workspace, path: Path, holder: int, *args: object, **kwargs: object):  # noqa: ANN202
        monkeypatch.setattr(lifecycle, "claim", real_claim)
        assert real_claim(ws, path, holder=1) is not None
        return real_claim(ws, path, holder, *args, **kwargs)

    monkeypatch.setattr(lifecycle, "claim", claim)


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
    plan = Plan.load(queued, "exp")
    race(monkeypatch)
    ensure_claimed(plan)
    assert state_of(queued.root, "exp") == "ConfigsInProgress"


def test_a_failed_experiment_is_not_claimed(queued: Workspace) -> None:
    plan = Plan.load(queued, "exp")
    claim = lifecycle.claim(queued, queued.folder(ExperimentState.QUEUED) / "exp.yaml", 1)
    assert claim is not None
    lifecycle.fail(queued, "exp", "broken", Failure(FailureCause.EXIT, "exit 1"), "a")
    with pytest.raises(OrchestrationError, match="is failed.*job-orchestration retry"):
        ensure_claimed(plan)
    assert state_of(queued.root, "exp") == "ConfigsFailed"
