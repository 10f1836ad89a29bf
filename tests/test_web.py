"""The experiments pages' data, without a server: names and paths confined to the workspace,
a log read from an offset, the list filtered and paged, a row as a person reads it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestration.states import ExperimentState
from orchestration.web import confine, views
from orchestration.workspace import Workspace


def experiment(ws: Workspace, name: str, state: ExperimentState = ExperimentState.COMPLETED,
               tasks: dict | None = None, folder: str | None = None) -> Path:
    """A readied experiment as the worker leaves it: config in its state folder, output
    folder linked from Misc/experiments, a run record whose steps log under ``logs/``."""
    (ws.folder(state) / f"{name}.yaml").write_text("tasks: []\n")
    out = ws.output / (folder or name)
    (out / "logs").mkdir(parents=True)
    ws.register(name, out)
    tasks = tasks or {"train": {"state": "done"}}
    record = {"name": name, "state": state.value, "config": {"outputDir": folder or name},
              "output_dir": str(out), "config_sha256": "0" * 64,
              "tasks": {tid: {"id": tid, "method": "M", "attempts": 1,
                              "log": str(out / "logs" / f"{tid}.log"), **t}
                        for tid, t in tasks.items()}}
    (out / "run.json").write_text(json.dumps(record))
    return out


@pytest.fixture
def workspace(ws) -> Workspace:
    return Workspace(ws)


@pytest.mark.parametrize("raw", ["", ".", "..", "../etc", "a/b", "/etc/passwd", "a\\b",
                                 ".hidden", "a\0b", "x" * 256])
def test_a_name_that_is_not_one_plain_file_name_is_not_found(raw):
    with pytest.raises(confine.NotFound):
        confine.experiment_name(raw)


def test_names_with_markup_and_spaces_are_names(workspace):
    name = "<img src=x onerror=alert(1)> lr 0.1"
    experiment(workspace, name, folder="odd")
    assert confine.locate(workspace, name)[0] == name


def test_an_output_link_leading_out_of_output_is_not_found(workspace, tmp_path):
    experiment(workspace, "fine")
    assert confine.output_dir(workspace, "fine") == (workspace.output / "fine").resolve()
    (workspace.folder(ExperimentState.COMPLETED) / "escape.yaml").write_text("tasks: []\n")
    os.symlink(tmp_path, workspace.link("escape"))
    with pytest.raises(confine.NotFound):
        confine.output_dir(workspace, "escape")
    assert confine.output_dir(workspace, "never-readied") is None


@pytest.mark.parametrize("log", ["/etc/passwd", "../../../etc/passwd", "relative.log", None, 7])
def test_a_log_path_outside_the_output_folder_is_not_found(workspace, log):
    out = experiment(workspace, "e")
    with pytest.raises(confine.NotFound):
        confine.step_log(out, {"log": log})


def test_a_log_symlinked_out_of_the_output_folder_is_not_found(workspace, tmp_path):
    out = experiment(workspace, "e")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    (out / "logs" / "train.log").symlink_to(secret)
    with pytest.raises(confine.NotFound):
        views.log_chunk(workspace, "e", "train", None)
    with pytest.raises(confine.NotFound):  # a step the record does not list
        views.log_chunk(workspace, "e", "other", None)


def test_log_chunks_follow_a_growing_log_and_start_over_when_it_is_replaced(workspace):
    out = experiment(workspace, "e", ExperimentState.RUNNING, {"train": {"state": "running"}})
    log = out / "logs" / "train.log"
    assert views.log_chunk(workspace, "e", "train", None)["text"] == ""  # not written yet
    log.write_bytes(b"one\ntwo\n")
    first = views.log_chunk(workspace, "e", "train", None)
    assert (first["text"], first["offset"], first["state"]) == ("one\ntwo\n", 8, "running")
    with log.open("ab") as fh:
        fh.write("three é".encode()[:-1])  # half of a two-byte character so far
    second = views.log_chunk(workspace, "e", "train", first["offset"])
    assert second["text"] == "three " and second["offset"] == 14
    with log.open("ab") as fh:
        fh.write("é".encode()[1:] + b"\n")
    assert views.log_chunk(workspace, "e", "train", second["offset"])["text"] == "é\n"
    log.write_bytes(b"new attempt\n")
    again = views.log_chunk(workspace, "e", "train", 16)
    assert again["reset"] and again["text"] == "new attempt\n"


def test_a_long_log_starts_with_its_tail_at_a_whole_line(workspace):
    out = experiment(workspace, "e")
    lines = [f"line {i}" for i in range(20000)]
    (out / "logs" / "train.log").write_text("\n".join(lines) + "\n")
    tail = views.log_chunk(workspace, "e", "train", None)
    assert tail["text"].endswith("line 19999\n") and tail["text"].startswith("line ")
    assert tail["skipped"] > 0 and len(tail["text"]) <= views.LOG_TAIL_BYTES


def row(name: str, state: str, tasks: list[dict] | None = None, **extra) -> dict:
    return {"name": name, "state": state, "tasks": tasks or [], "eta_seconds": None, **extra}


def test_the_list_filters_by_name_and_state_most_pressing_first_and_pages(workspace):
    status = {"experiments": [row("lr-1", "completed"), row("lr-2", "failed"),
                              row("lr-3", "running"), row("other", "queued")]
                             + [row(f"z{i:03d}", "completed") for i in range(250)],
              "totals": {"completed": 251, "failed": 1, "running": 1, "queued": 1},
              "eta_seconds": 12.0, "workers": 1}
    first = views.page(workspace, status, views.Query(), now=0)
    assert [e["name"] for e in first["experiments"][:4]] == ["lr-3", "lr-2", "other", "lr-1"]
    assert (first["matched"], len(first["experiments"])) == (254, views.PAGE_SIZE)
    assert first["totals"] == status["totals"] and first["eta_line"] == (
        "1 worker busy; all done in ~12.0s")
    last = views.page(workspace, status, views.Query(offset=200), now=0)
    assert [e["name"] for e in last["experiments"]][-1] == "z249"
    lr = views.page(workspace, status, views.Query(search="LR-"), now=0)
    assert [e["name"] for e in lr["experiments"]] == ["lr-3", "lr-2", "lr-1"]
    failed = views.page(workspace, status, views.Query(search="lr", state="failed"), now=0)
    assert [e["name"] for e in failed["experiments"]] == ["lr-2"]


@pytest.mark.parametrize("args", [{"state": "done"}, {"offset": "-1"}, {"limit": "0"},
                                  {"limit": "100000"}, {"offset": "x"}])
def test_parameters_the_page_never_sends_are_refused(args):
    with pytest.raises(views.BadQuery):
        views.Query.parse(args.get)


def test_a_row_shows_steps_and_the_running_steps_fraction(workspace):
    tasks = [{"id": "prep", "state": "completed"}, {"id": "train", "state": "running",
                                               "progress": 0.5, "message": "epoch 2"},
             {"id": "eval", "state": "pending"}]
    view = views.row_view(workspace, row("e", "running", tasks, started=100.0,
                                         eta_seconds=90.0), now=130.0)
    assert view["progress"] == pytest.approx(0.5)  # (1 done + 0.5) / 3
    assert (view["steps"], view["elapsed"], view["left"]) == ("1/3 train 50%", "30.0s", "1m30s")
    assert view["message"] == "epoch 2"


def test_a_failed_row_says_why_with_the_last_line_its_step_logged(workspace):
    out = experiment(workspace, "bad", ExperimentState.FAILED,
                     {"prep": {"state": "done"}, "train": {"state": "failed"}})
    (out / "logs" / "train.log").write_text(
        "=== 2026-12-03T09:20:39 attempt 1 of 1 on vm (pid 1)\nTraceback ...\n"
        "KeyError: '<script>x</script>'\n=== attempt 1 of 1 failed: KeyError\n")
    tasks = [{"id": "prep", "state": "done", "log": str(out / "logs" / "prep.log")},
             {"id": "train", "state": "failed", "attempts": 2,
              "log": str(out / "logs" / "train.log")}]
    failed = row("bad", "failed", tasks, output_dir=str(out),
                 error="step 'train' failed after 2 attempt(s): KeyError\nlog: ...")
    view = views.row_view(workspace, failed, now=0)
    assert view["detail"] == "step 'train' failed after 2 attempt(s): KeyError"
    assert (view["failed_step"], view["attempts"]) == ("train", 2)
    assert view["last_log_line"] == "KeyError: '<script>x</script>'"
    failed["failure"] = {"step": "train", "cause": "oom", "detail": "peak 23.1 GB",
                         "attempts": 2}
    view = views.row_view(workspace, failed, now=0)
    assert (view["cause"], view["detail"]) == ("oom", "peak 23.1 GB")
    assert view["last_log_line"] == "KeyError: '<script>x</script>'"


def test_a_config_rejected_before_it_had_a_record_still_has_a_page(workspace):
    failed = workspace.folder(ExperimentState.FAILED)
    (failed / "typo.yaml").write_text("tasks: [\n")
    (failed / "typo.error.txt").write_text("typo.yaml: config rejected:\n  - bad YAML\n")
    info = views.experiment(workspace, "typo", None, now=0)
    assert (info["state"], info["tasks"], info["config"]) == ("failed", [], [])
    assert info["view"]["detail"] == "typo.yaml: config rejected:"
    with pytest.raises(confine.NotFound):  # nothing to compare it with
        views.comparison(workspace, "typo", "typo")


def test_the_status_document_is_encoded_as_status_json_prints_it():
    from orchestration.web.handlers import _encode

    doc = {"experiments": [{"name": "é <b>", "path": Path("/x"), "n": 1.5}, {"tasks": []}],
           "totals": {"failed": 1}, "eta_seconds": None, "workers": 0}
    assert _encode(doc) == json.dumps(doc, default=str).encode()
    assert _encode({"experiments": []}) == json.dumps({"experiments": []}).encode()
