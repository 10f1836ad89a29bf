"""``results``: rows built from run records in a real workspace (written as ``ready`` writes
them), varying keys, typed ``where`` filters, and the CSV/table shapes."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from orchestration.config.schema import check
from orchestration.exceptions import UsageError
from orchestration.records import run_record
from orchestration.records.provenance import Provenance
from orchestration.records.run_record import RunRecord
from orchestration.records.results import parse_where, results, table, to_csv
from orchestration.states import ExperimentState, StepState
from orchestration.workspace import Workspace


def add(ws: Workspace, name: str, state: ExperimentState = ExperimentState.COMPLETED, returned: dict | None = None,
        **fields) -> Path:
    """An experiment as ``ready`` leaves it, its tasks done with ``returned`` values."""
    data = {"githubRepository": "r", "pathToTasks": f"/code/{name}", "outputDir": f"s/{name}",
            "tasks": [{"id": "train", "method": "Train"}, {"id": "eval", "method": "Eval"}],
            **fields}
    spec = check(data)[0]
    out = ws.output / "s" / name
    out.mkdir(parents=True)
    record = RunRecord.new(name, spec.data, [(t.id, t.method) for t in spec.tasks], out, b"",
                           Provenance.unavailable("no git"), {}, [])
    for task_id, value in (returned or {}).items():
        record.tasks[task_id].state, record.tasks[task_id].result = StepState.COMPLETED, value
    run_record.write(out, record)
    ws.register(name, out)
    (ws.folder(state) / f"{name}.yaml").write_text("{}\n")
    return out


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.init()
    return ws


def test_rows_hold_varying_config_and_returned_values(workspace):
    add(workspace, "b", lr=0.2, seed=1, model={"depth": 2}, returned={"train": {"loss": 0.5}})
    add(workspace, "a", lr=0.1, seed=1, model={"depth": 3},
        returned={"train": {"loss": 0.7}, "eval": 0.9})
    add(workspace, "c", ExperimentState.FAILED, lr=0.3, seed=1, model={"depth": 2}, returned={})
    rows = results(workspace)
    assert rows == [
        {"name": "a", "state": "completed", "config": {"lr": 0.1, "model.depth": 3},
         "results": {"train": {"loss": 0.7}, "eval": 0.9}},
        {"name": "b", "state": "completed", "config": {"lr": 0.2, "model.depth": 2},
         "results": {"train": {"loss": 0.5}}},
        {"name": "c", "state": "failed", "config": {"lr": 0.3, "model.depth": 2},
         "results": {}},
    ]  # seed is the same everywhere; outputDir and pathToTasks are bookkeeping


def test_keys_missing_from_some_rows_and_task_fields_count_as_varying(workspace):
    add(workspace, "a", lr=0.1)
    add(workspace, "b", lr=0.1, dropout=0.5,
        tasks=[{"id": "train", "method": "Train", "epochs": 3}])
    rows = results(workspace)
    assert rows[0]["config"] == {"tasks.eval.method": "Eval"}
    assert rows[1]["config"] == {"dropout": 0.5, "tasks.train.epochs": 3}


def test_where_is_typed(workspace):
    add(workspace, "float", lr=0.1, flag=True, opt="adam")
    add(workspace, "string", lr="0.1", flag=1, opt="sgd")
    names = lambda where: [r["name"] for r in results(workspace, where=where)]  # noqa: E731
    assert names(parse_where(["lr=0.1"])) == ["float"]
    assert names(parse_where(["lr='0.1'"])) == ["string"]
    assert names({"flag": True}) == ["float"]
    assert names({"flag": 1}) == ["string"]  # True is not 1
    assert names(parse_where(["opt=adam", "lr=0.1"])) == ["float"]
    assert names(parse_where(["opt=adam", "lr=0.2"])) == []
    assert names({"outputDir": "s/string"}) == ["string"]  # bookkeeping keys filter too
    assert names({"name": "float"}) == ["float"]
    assert names({"state": "completed"}) == ["float", "string"]
    assert names({"tasks.train.method": "Train", "flag": True}) == ["float"]


def test_a_where_key_no_experiment_has_is_an_error_naming_close_matches(workspace):
    assert results(workspace, where={"lrr": 0.1}) == []  # no experiment yet: nothing to name
    add(workspace, "a", lr=0.1, optimizer={"momentum": 0.9})
    for key, hint in (("lrr", "did you mean lr?"), ("optimizer.momentun",
                                                    "did you mean optimizer.momentum?"),
                      ("tasks.trian.method", "did you mean tasks.train.method")):
        with pytest.raises(UsageError, match=rf"--where {key}: no experiment listed has this "
                                             rf"key; {hint}"):
            results(workspace, where={key: 0.1})


def test_parse_where_types_values_as_submit_does_and_refuses_bad_items():
    assert parse_where(["lr=0.1", "n=3", "ok=true", "opt=adam", "s=", "x='a=b'", "e=1e-3",
                        "y=yes", "name=0.1"]) == {
        "lr": 0.1, "n": 3, "ok": True, "opt": "adam", "s": "", "x": "a=b", "e": 0.001,
        "y": "yes", "name": "0.1"}
    for bad, message in ((["lr"], "expected KEY=VALUE"), (["=1"], "expected KEY=VALUE"),
                         (["lr=1", "lr=2"], "given twice"), (["lr=1,2"], "several values"),
                         (["+lr=1"], "for submit"), (["x=a=b"], "override grammar")):
        with pytest.raises(UsageError, match=message):
            parse_where(bad)


def test_sort_orders_numbers_as_numbers_missing_last_both_ways(workspace):
    add(workspace, "a", lr=0.1, returned={"train": {"loss": 10}})
    add(workspace, "b", lr=2, returned={"train": {"loss": 9.5}})
    add(workspace, "c", lr=0.5, returned={})
    add(workspace, "d", lr="x", returned={"train": {"loss": None}})
    order = lambda key, desc=False: [  # noqa: E731
        r["name"] for r in results(workspace, sort=key, desc=desc)]
    assert order("train.loss") == ["b", "a", "c", "d"]
    assert order("train.loss", desc=True) == ["a", "b", "c", "d"]
    assert order("lr") == ["a", "c", "b", "d"]  # numbers first, then text
    assert order("lr", desc=True) == ["d", "b", "c", "a"]
    assert order("name", desc=True) == ["d", "c", "b", "a"]
    assert order("outputDir") == ["a", "b", "c", "d"]
    with pytest.raises(UsageError, match="--sort train.los: .*did you mean train.loss"):
        order("train.los")


def test_all_fields_returns_every_config_field_bookkeeping_included(workspace):
    add(workspace, "a", lr=0.1, seed=1)
    add(workspace, "b", lr=0.2, seed=1)
    [row, _] = results(workspace, all_fields=True)
    assert row["config"] == {
        "githubRepository": "r", "pathToTasks": "/code/a", "outputDir": "s/a",
        "tasks.train.method": "Train", "tasks.eval.method": "Eval", "lr": 0.1, "seed": 1}
    assert results(workspace)[0]["config"] == {"lr": 0.1}


def test_unreadable_or_unlisted_experiments_are_skipped(workspace):
    add(workspace, "good", lr=1)
    broken = add(workspace, "broken", lr=2)
    run_record.record_path(broken).write_text("{not json")
    add(workspace, "source-only", ExperimentState.NEW, lr=3)
    assert [r["name"] for r in results(workspace)] == ["good"]


def test_workspace_can_be_a_path_or_the_environment(workspace, monkeypatch):
    add(workspace, "a", lr=1)
    assert results(str(workspace.root)) == results(workspace)
    monkeypatch.setenv("JOB_ORCHESTRATION_WORKSPACE", str(workspace.root))
    assert results() == results(workspace)


def test_table_and_csv_flatten_returned_values(workspace):
    add(workspace, "a", lr=0.1, returned={"train": {"loss": 0.5, "tags": ["x"]}, "eval": "ok"})
    add(workspace, "b", lr=0.2, returned={"train": {"loss": 0.25}})
    rows = results(workspace)
    columns, cells = table(rows)
    assert columns == ["name", "state", "lr", "train.loss", "train.tags", "eval"]
    assert cells == [["a", "completed", "0.1", "0.5", '["x"]', "ok"],
                     ["b", "completed", "0.2", "0.25", "", ""]]
    assert list(csv.reader(io.StringIO(to_csv(rows)))) == [columns, *cells]
