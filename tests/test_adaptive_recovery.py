"""What a process killed inside a search's tell or ask leaves behind, and how the next one
finishes it: the states are made with Optuna itself, exactly as a kill would leave them."""
from __future__ import annotations

from pathlib import Path

import optuna

from orchestration.adaptive import study as studies
from orchestration.adaptive.advance import advance
from orchestration.adaptive.start import search
from orchestration.adaptive.store import SearchFolder
from orchestration.workspace import Workspace
from tests.e2e.test_search import project, told, write_spec  # noqa: F401

SEARCH = {"trials": 4, "parallel": 2, "seed": 3,
          "params": {"x": {"type": "float", "low": -5.0, "high": 5.0},
                     "y": {"type": "float", "low": -5.0, "high": 5.0}}}


def started(ws: Path, project: Path, tmp_path: Path) -> SearchFolder:
    spec = write_spec(tmp_path / "s.yaml", project, {**SEARCH, "parallel": 1})
    assert search(spec, workspace=ws) == ["s-t0001"]
    return SearchFolder(Workspace(ws), "s")


def test_an_ask_killed_before_it_named_its_trial_is_finished_not_repeated(
        ws, project, tmp_path):
    folder = started(ws, project, tmp_path)
    ledger = folder.ledger()
    ledger.asking, ledger.next_index = {"name": "s-t0002", "ready": False}, 3
    folder.save(ledger)
    study = studies.load(str(folder.journal), "s")
    study.ask()  # the asker died right after this: a RUNNING trial with no experiment, no params

    advance(folder)
    trials = studies.trials(studies.load(str(folder.journal), "s"))
    assert len(trials) == 2, "the orphan trial is adopted, not left RUNNING beside a new one"
    assert trials[1].user_attrs["experiment"] == "s-t0002" and set(trials[1].params) == {"x",
                                                                                          "y"}
    assert (Path(ws) / "ConfigSources" / "s-t0002.yaml").exists()
    after = folder.ledger()
    assert after.asking is None and after.trials["s-t0002"].number == 1
    assert advance(folder) == [] and len(studies.trials(
        studies.load(str(folder.journal), "s"))) == 2  # done once: nothing left to do


def test_a_journal_line_torn_by_a_killed_writer_is_cut_before_the_next_write(
        ws, project, tmp_path):
    folder = started(ws, project, tmp_path)
    with open(folder.journal, "ab") as fh:
        fh.write(b'{"op_code":8,"worker_id":"dead","trial_id":0,"user_at')  # killed mid-append
    ledger = folder.ledger()
    ledger.trials["s-t0001"].told = None
    (Path(ws) / "ConfigSources" / "s-t0001.yaml").rename(
        Path(ws) / "ConfigsFailed" / "s-t0001.yaml")  # it ended (as failed): a tell is due
    folder.save(ledger)

    messages = advance(folder)
    assert any("s-t0001: told FAIL" in m for m in messages), messages
    assert folder.journal.read_bytes().endswith(b"\n")
    assert told(Path(ws), "s") == {"s-t0001": [3], "s-t0002": []}
    assert len(optuna.load_study(study_name="s", storage=studies.storage(
        str(folder.journal))).trials) == 2
