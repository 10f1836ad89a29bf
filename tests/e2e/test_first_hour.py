"""The first hour of a new user (issue 12), through the installed CLI: a command that did
nothing never looks like success, typos of our keys are errors, a step never fails for its
return value, ``retry`` runs the code it was readied with, and big batches print a summary,
the rejections and a progress bar, not a line per config."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestration import results
from tests.conftest import (commit_repo, git, make_code_repo, make_config, read_ledger,
                            run_cli, state_of, wait_until, write_config)
from tests.e2e.terminal import on_terminal

TRACEBACK = "Traceback (most recent call last)"
STAMPED = re.compile(r"^\d\d:\d\d:\d\d ")  # a worker line: the time it happened first


def copy_in(ws: Path, name: str, config: dict | str) -> Path:
    """Put a config into ConfigSources as ``cp`` would: written just now."""
    path = ws / "ConfigSources" / f"{name}.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new))


def one(tasks_dir: Path, name: str, method: str = "Ledger", **task: object) -> dict:
    return make_config(tasks_dir, name, [{"id": "train", "method": method, **task}])


# --- 1. a command that did nothing must not look like success -------------------------------
def test_ready_right_after_a_copy_judges_every_file(ws, tasks_dir):
    """``cp broken.yaml good.yaml ConfigSources/ && job-orchestration ready``: the files
    changed a moment ago are judged once settled, so the exit status tells the truth."""
    copy_in(ws, "broken", "githubRepository: x\ntasks: [{id: train, method: Ledger}\n")
    copy_in(ws, "good", one(tasks_dir, "good"))
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 2, ready.stdout + ready.stderr
    assert "1 queued, 1 rejected" in ready.stdout
    assert state_of(ws, "good") == "ConfigsToRun" and state_of(ws, "broken") == "ConfigsFailed"
    assert "not valid YAML" in (ws / "ConfigsFailed" / "broken.error.txt").read_text()
    again = run_cli("ready", ws=ws)  # nothing left: said, and not exit 0
    assert again.returncode == 3 and "nothing to ready" in again.stdout, again.stdout


def test_retry_judges_a_failed_config_edited_a_moment_ago(ws, tasks_dir, ledger):
    write_config(ws, "exp", one(tasks_dir, "exp", "Fail", ledger=str(ledger)))
    assert run_cli("ready", ws=ws).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 1
    failed = ws / "ConfigsFailed" / "exp.yaml"
    edit(failed, "method: Fail", "method: Ledger\n  retires: 1")  # saved just now, a typo in it
    typo = run_cli("retry", "exp", ws=ws)
    assert typo.returncode == 2, typo.stdout + typo.stderr
    assert "tasks[0].retires: unknown setting; did you mean retries?" in typo.stderr
    assert state_of(ws, "exp") == "ConfigsFailed"
    edit(failed, "retires", "retries")
    fixed = run_cli("retry", "exp", ws=ws)
    assert fixed.returncode == 0, fixed.stderr
    assert "exp: queued again; the config was edited since ready" in fixed.stdout
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    assert state_of(ws, "exp") == "ConfigsCompleted"
    assert read_ledger(ledger) == ["exp:train", "exp:train"]


def test_status_and_an_idle_worker_say_what_waits_in_config_sources(ws, tasks_dir):
    for name in ("a", "b"):
        write_config(ws, name, one(tasks_dir, name))
    waiting = "2 configs in ConfigSources are not readied: run job-orchestration ready"
    status = run_cli("status", ws=ws)
    assert status.returncode == 0 and waiting in status.stdout, status.stdout
    assert json.loads(run_cli("status", "--json", ws=ws).stdout)["not_readied"] == 2
    worker = run_cli("worker", "--exit-when-empty", ws=ws)
    assert worker.returncode == 0, worker.stderr
    assert "0 completed, 0 failed" in worker.stdout
    assert f"warning: {waiting}" in worker.stderr


def test_ctrl_c_on_a_waiting_worker_exits_130(ws, tmp_path):
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "orchestration", "worker", "--poll",
                                   "0.2"], env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE":
                                                str(ws)},
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: b"is waiting for configs" in log.read_bytes(), 30, "the worker")
        os.killpg(worker.pid, signal.SIGINT)  # what Ctrl-C at a terminal does
        assert worker.wait(30) == 130, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


# --- 2. typos are errors, not silent defaults -----------------------------------------------
TYPOS = {  # a near miss of a key we know -> what the error says
    "timout": "tasks[0].timout: unknown setting; did you mean timeout?",
    "retires": "tasks[0].retires: unknown setting; did you mean retries?",
    "requries": "tasks[0].requries: unknown setting; did you mean requires?",
    "resouces": "tasks[0].resouces: unknown setting; did you mean resources?",
}


def test_near_misses_of_our_keys_are_rejected_and_own_fields_reach_the_task(ws, tasks_dir):
    for key, value in (("timout", 60), ("retires", 1), ("requries", []),
                       ("resouces", {"gpu": 1})):
        write_config(ws, f"typo-{key}", one(tasks_dir, f"typo-{key}", "Echo", **{key: value}))
    write_config(ws, "typo-methd", make_config(tasks_dir, "typo-methd",
                                               [{"id": "train", "methd": "Echo"}]))
    no_path = one(tasks_dir, "typo-pathToTask")
    no_path["pathToTask"] = no_path.pop("pathToTasks")
    write_config(ws, "typo-pathToTask", no_path)
    write_config(ws, "own-fields", one(tasks_dir, "own-fields", "Echo", epochs=3) | {"lr": 0.1})
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 2
    assert "1 queued, 6 rejected" in ready.stdout
    expected = {**{f"typo-{key}": message for key, message in TYPOS.items()},
                "typo-methd": "tasks[0].methd: unknown setting; did you mean method?",
                "typo-pathToTask": "pathToTasks: missing; required: the folder holding "
                                   "Tasks.py; did you mean pathToTasks instead of pathToTask?"}
    for name, message in expected.items():
        assert message in (ws / "ConfigsFailed" / f"{name}.error.txt").read_text(), name
        assert message in ready.stderr
    assert TRACEBACK not in ready.stderr

    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    [task] = json.loads(run_cli("show", "own-fields", "--json", ws=ws).stdout)["tasks"]
    assert (task["result"]["epochs"], task["result"]["lr"]) == (3, 0.1)
    where = run_cli("results", "--where", "lrr=0.1", ws=ws)
    assert where.returncode == 2 and "did you mean lr?" in where.stderr, where.stderr


# --- 3. a finished step never fails for its return value ------------------------------------
def test_a_step_returning_numpy_values_completes(ws, tasks_dir):
    pytest.importorskip("numpy")  # not a dependency; tests/fixtures/Tasks.py imports it lazily
    write_config(ws, "np", one(tasks_dir, "np", "NumpyResult"))
    assert run_cli("ready", ws=ws).returncode == 0
    work = run_cli("worker", "--exit-when-empty", ws=ws)
    assert work.returncode == 0, work.stdout + work.stderr
    [task] = json.loads(run_cli("show", "np", "--json", ws=ws).stdout)["tasks"]
    assert task["state"] == "completed"
    result = task["result"]
    assert (result["acc"], result["loss"]) == (0.93, 0.25)  # float32 as numpy prints it
    assert (result["epochs"], result["passed"]) == (3, True)
    assert result["confusion"] == [[1, 0], [0, 1]] and result["best"] == [0.5, 1.5]
    assert "kept as its repr" not in (ws / "Output" / "np" / "logs" / "train.log").read_text()
    [row] = results(workspace=ws, all_fields=True)  # pandas users: every field, every value
    assert row["config"]["tasks.train.method"] == "NumpyResult"
    assert row["results"]["train"]["epochs"] == 3


# --- 4. retry runs the code the run was readied with ----------------------------------------
IMPOSTOR = """from orchestration import TaskBase

class Ledger(TaskBase):
    def run(self):
        with open(self.config["ledger"], "a") as fh:
            fh.write("impostor\\n")

Fail = Ledger
"""


def test_retry_from_another_folder_runs_the_code_it_was_readied_with(tmp_path, ws, ledger):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    code = make_code_repo(home / "project")
    (elsewhere / "project" / "tasks").mkdir(parents=True)  # the same relative path, other code
    (elsewhere / "project" / "tasks" / "Tasks.py").write_text(IMPOSTOR)
    commit_repo(elsewhere / "project")
    flag = tmp_path / "fixed"
    for name in ("as-readied", "edited"):
        write_config(ws, name, make_config(Path("project/tasks"), name, [
            {"id": "a", "method": "Ledger"}, {"id": "b", "method": "Fail"}],
            ledger=str(ledger), fix_flag=str(flag)))
    assert run_cli("ready", ws=ws, cwd=home).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws, cwd=home).returncode == 1
    flag.touch()
    edit(ws / "ConfigsFailed" / "edited.yaml", "outputDir:", "value: 7\noutputDir:")

    retry = run_cli("retry", "as-readied", "edited", ws=ws, cwd=elsewhere)
    assert retry.returncode == 0, retry.stderr
    assert "2 queued, 0 rejected" in retry.stdout
    work = run_cli("worker", "--exit-when-empty", ws=ws, cwd=elsewhere)
    assert work.returncode == 0, work.stdout + work.stderr
    assert "impostor" not in read_ledger(ledger)
    assert read_ledger(ledger).count("as-readied:b") == 2  # a was finished: not run again
    head = git(code, "rev-parse", "HEAD").strip()
    for name in ("as-readied", "edited"):
        info = json.loads(run_cli("show", name, "--json", ws=ws).stdout)
        assert info["state"] == "completed" and info["commit"] == head
        assert info["config"]["pathToTasks"] == str(code / "tasks")
    assert json.loads(run_cli("show", "edited", "--json", ws=ws).stdout)["config"]["value"] == 7


def test_retry_failed_where_and_names_in_sweep_order(ws, tasks_dir, ledger, tmp_path):
    """``retry --failed [--where K=V]``; sweep names pad numbers, so the name order workers
    claim in is the sweep order; ``show`` of a near name suggests the real ones."""
    flag = tmp_path / "fixed"
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(make_config(
        tasks_dir, "s/${lr}-${seed}", [{"id": "train", "method": "Fail"}], lr=0.5, seed=0,
        ledger=str(ledger), fix_flag=str(flag))))
    submit = run_cli("submit", str(base), "--sweep", "lr=0.1,0.2", "--sweep", "seed=9,10",
                     "--ready", ws=ws)
    assert submit.returncode == 0, submit.stderr
    names = [f"base-lr{lr}-seed{seed}" for lr in ("0.1", "0.2") for seed in ("09", "10")]
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 1
    assert read_ledger(ledger) == [f"s/{lr}-{seed}:train" for lr in (0.1, 0.2)
                                   for seed in (9, 10)]  # claimed in sweep order
    near = run_cli("show", "base-lr0.1-seed", ws=ws)
    assert near.returncode == 2
    assert re.search(r"did you mean .*base-lr0\.1-seed09", near.stderr), near.stderr
    assert "base-lr0.1-seed10" in near.stderr

    flag.touch()
    some = run_cli("retry", "--failed", "--where", "lr=0.1", ws=ws)
    assert some.returncode == 0, some.stderr
    assert "2 queued, 0 rejected" in some.stdout
    assert [state_of(ws, n) for n in names] == ["ConfigsToRun"] * 2 + ["ConfigsFailed"] * 2
    rest = run_cli("retry", "--failed", ws=ws)
    assert rest.returncode == 0 and "2 queued, 0 rejected" in rest.stdout, rest.stderr
    none = run_cli("retry", "--failed", ws=ws)
    assert none.returncode == 3 and "no failed experiments" in none.stdout
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    assert all(state_of(ws, n) == "ConfigsCompleted" for n in names)


# --- 5. less noise --------------------------------------------------------------------------
REMOTE = "none of the git remotes of"


def test_the_remote_warning_once_per_command_and_never_from_reading(ws, tasks_dir, tmp_path):
    base = tmp_path / "base.yaml"
    config = one(tasks_dir, "r/${seed}") | {"seed": 0}
    config["githubRepository"] = "https://github.com/someone/else"  # not the repo's origin
    base.write_text(yaml.safe_dump(config))
    submit = run_cli("submit", str(base), "--sweep", "seed=1,2,3", "--ready", ws=ws)
    assert submit.returncode == 0, submit.stderr
    assert submit.stderr.count(REMOTE) == 1, submit.stderr
    work = run_cli("worker", "--exit-when-empty", ws=ws)
    assert work.returncode == 0 and REMOTE not in work.stdout + work.stderr
    started = [line for line in work.stdout.splitlines() if ": started" in line]
    assert len(started) == 3 and all(STAMPED.match(line) for line in started), work.stdout
    for argv in (["status"], ["show", "base-seed2"], ["results"], ["logs", "base-seed2"],
                 ["diff", "base-seed1", "base-seed3"], ["status", "--json"]):
        read = run_cli(*argv, ws=ws)
        assert read.returncode == 0 and read.stderr == "", (argv, read.stderr)
    for seed in (1, 2, 3):  # each record keeps it: show says it, as a note
        info = json.loads(run_cli("show", f"base-seed{seed}", "--json", ws=ws).stdout)
        assert any(REMOTE in warning for warning in info["warnings"])
    assert f"note:    {REMOTE}" in run_cli("show", "base-seed2", ws=ws).stdout


def test_the_demo_prints_no_warning(tmp_path):
    demo = run_cli("demo", "--workspace", str(tmp_path / "demo"), cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stderr == ""
    events = [line for line in demo.stdout.splitlines() if ": completed in" in line]
    assert len(events) == 3 and all(STAMPED.match(line) for line in events), demo.stdout


def checked_base(tmp_path: Path, tasks_dir: Path) -> Path:
    """A base whose Checked task's validate() rejects threshold <= 0."""
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(one(tasks_dir, "t/${threshold}", "Checked")
                                   | {"threshold": 1}))
    return base


def test_hundreds_of_configs_print_a_summary_and_each_rejection(ws, tasks_dir, tmp_path):
    base = checked_base(tmp_path, tasks_dir)
    many = run_cli("submit", str(base), "--sweep", "threshold=range(-2,58)", "--ready", ws=ws)
    assert many.returncode == 2
    assert many.stdout.splitlines() == ["60 written, 0 skipped as duplicates",
                                        "57 queued, 3 rejected"]
    rejected = [line for line in many.stderr.splitlines() if line.startswith("error: ")]
    assert [line.split("/")[-1] for line in rejected] == [
        f"base-threshold{t}.yaml: config rejected:" for t in (-2, -1, 0)]
    assert "threshold must be > 0" in many.stderr and "warning" not in many.stderr

    verbose = run_cli("submit", str(base), "--sweep", "threshold=range(200,212)", "--ready",
                      "--verbose", ws=ws)
    assert verbose.returncode == 0, verbose.stderr
    lines = verbose.stdout.splitlines()
    assert sum(": written; threshold=" in line for line in lines) == 12
    assert sum(": queued, output in" in line for line in lines) == 12

    copy_many(ws, tasks_dir, 120)  # and `ready` of files copied in
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 0 and ready.stdout.splitlines() == ["120 queued, 0 rejected"]


def copy_many(ws: Path, tasks_dir: Path, n: int) -> None:
    for i in range(n):
        write_config(ws, f"copied-{i:03d}", one(tasks_dir, f"c/{i}"))


@pytest.mark.parametrize("command", ["submit", "ready"])
def test_a_progress_bar_on_a_terminal(ws, tasks_dir, tmp_path, command):
    if command == "submit":
        base = tmp_path / "base.yaml"
        base.write_text(yaml.safe_dump(one(tasks_dir, "p/${seed}") | {"seed": 0}))
        args = ["submit", str(base), "--sweep", "seed=range(120)", "--ready"]
    else:
        copy_many(ws, tasks_dir, 120)
        args = ["ready"]
    drawn = on_terminal(*args, ws=ws, rows=24, cols=80)
    assert drawn.returncode == 0, drawn.text
    assert re.search(r"(checking|validating|queueing|done) ━+ +\d+%", drawn.text), drawn.text
    assert drawn.text.rstrip().endswith("120 queued, 0 rejected")
