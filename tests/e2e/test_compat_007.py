"""A project written for job-orchestration 0.0.7 (tests/fixtures/compat007: Tasks.py importing
``job_orchestration``, annotated ``TaskWithInitAndValidate`` tasks writing under
``self.outputDir``, data opened relative to the repository; a config with ``{date}`` in its
outputDir) runs unchanged through our commands and through 0.0.7's ``-action`` commands, and
every file lands in the experiment's output folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import (FIXTURES, commit_repo, git, make_config, run_cli, state_of,
                            write_config)

ACTIONS = ("newWorker", "readyConfigs", "progressReport", "rereadyFailed")
FOLDERS_007 = ("ConfigSources", "ConfigsToRun", "ConfigsCompleted", "ConfigsFailed", "Output",
               "Misc")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed repository laid out as 0.0.7 wanted: Tasks.py at the top, data beside it."""
    repo = tmp_path / "project"
    shutil.copytree(FIXTURES / "compat007", repo)
    return commit_repo(repo)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """Where the commands are started: nothing may land here."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def config_007(repo: Path, name: str, **extra) -> dict:
    return {"githubRepository": "https://github.com/me/project", "pathToTasks": str(repo),
            "outputDir": "{date}/" + name, "UNSAFE_ignoreDirtyCheck": True, "epochs": 3,
            "vocabFile": "data/vocab.txt",
            "tasks": [{"id": "train", "method": "Train"}, {"id": "test", "method": "Test"},
                      {"id": "report", "method": "Report"}], **extra}


def dates_around(started: float) -> set[str]:
    return {time.strftime("%Y_%m_%d", time.localtime(t)) for t in (started, time.time())}


def assert_ran_in_its_output_folder(ws: Path, name: str, repo: Path, elsewhere: Path,
                                    started: float, module: str = "orchestration") -> Path:
    """Every file the tasks wrote is in the experiment's folder, ``Output/<date>/<name>``."""
    shown = run_cli("show", name, "--json", ws=ws, module=module)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["state"] == "completed", info
    out = Path(info["output_dir"])
    # [lead: `{date}` resolved at ready] Output/2026_12_02/<name>, not Output/{date}/<name>
    assert out.parent.name in dates_around(started) and out.parent.parent == ws / "Output"
    assert not (ws / "Output" / "{date}").exists()
    # [lead: config["outputDir"] absolute] the files are in the output folder...
    assert (out / "model" / "x.ckpt").read_text() == "epochs=3 vocab=3"
    assert yaml.safe_load((out / "results.yaml").read_text()) == {"accuracy": 0.75, "epochs": 3}
    assert (out / "report.txt").read_text() == str(ws / "Output")  # Constants.output_location
    results = {t["id"]: t["result"] for t in info["tasks"]}
    # [lead: steps run with cwd = pathToTasks] data/vocab.txt was found from the repository
    assert results == {"train": 3, "test": 0.75, "report": str(repo)}
    # ...and nowhere else: not where the commands ran, not in the repository
    assert list(elsewhere.iterdir()) == []
    assert git(repo, "status", "--porcelain") == ""
    return out


def test_a_007_project_runs_unchanged_through_our_commands(tmp_path, project, elsewhere):
    ws = tmp_path / "ws"
    assert run_cli("init", "--workspace", str(ws)).returncode == 0
    write_config(ws, "compat", config_007(project, "compat"))
    started = time.time()
    ready = run_cli("ready", "--workspace", str(ws), cwd=elsewhere)
    # [lead: validate() at ready runs with cwd = pathToTasks] it opens data/vocab.txt
    assert ready.returncode == 0, ready.stdout + ready.stderr
    work = run_cli("worker", "--exit-when-empty", "--workspace", str(ws), cwd=elsewhere)
    assert work.returncode == 0, work.stdout + work.stderr
    assert_ran_in_its_output_folder(ws, "compat", project, elsewhere, started)

    from job_orchestration.clientUtils import getResults

    assert getResults(workspace=ws, configFilter=lambda c: c.epochs == 3,
                      statusFilter=lambda s: s.state == "completed") == [
        {"accuracy": 0.75, "epochs": 3}]
    assert getResults(workspace=ws, configFilter=lambda c: c.raw_config["epochs"] == 4) == []


@pytest.mark.parametrize("module", ["job_orchestration", "orchestration"])
def test_a_007_project_runs_unchanged_through_its_own_commands(tmp_path, project, elsewhere,
                                                               module):
    ws = tmp_path / "ws"  # not created yet: the bare command creates it, as 0.0.7's did
    bare = run_cli(ws=ws, cwd=elsewhere, module=module)
    assert bare.returncode == 0, bare.stderr
    assert all((ws / folder).is_dir() for folder in FOLDERS_007)
    write_config(ws, "legacy", config_007(project, "legacy"))
    started = time.time()
    ready = run_cli("-action", "readyConfigs", ws=ws, cwd=elsewhere, module=module)
    assert ready.returncode == 0, ready.stdout + ready.stderr  # [lead: cwd at ready]
    assert state_of(ws, "legacy") == "ConfigsToRun"
    work = run_cli("-action", "newWorker", ws=ws, cwd=elsewhere, module=module)
    assert work.returncode == 0, work.stdout + work.stderr
    assert_ran_in_its_output_folder(ws, "legacy", project, elsewhere, started, module)
    report = run_cli("-action", "progressReport", ws=ws, cwd=elsewhere, module=module)
    assert report.returncode == 0, report.stderr
    assert "legacy" in report.stdout and "completed" in report.stdout


def test_rereadyFailed_queues_every_failed_experiment_again_keeping_its_outputs(
        tmp_path, project, elsewhere):
    ws = tmp_path / "ws"
    flag = tmp_path / "test-data-arrived"
    assert run_cli(ws=ws, module="job_orchestration").returncode == 0
    write_config(ws, "flaky", config_007(project, "flaky", fixFlag=str(flag)))
    assert run_cli("-action", "readyConfigs", ws=ws, cwd=elsewhere,
                   module="job_orchestration").returncode == 0  # [lead: cwd at ready]
    failed = run_cli("-action", "newWorker", ws=ws, cwd=elsewhere, module="job_orchestration")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert state_of(ws, "flaky") == "ConfigsFailed"
    flag.touch()
    # [lead: `retry --failed`] 0.0.7 deleted the output folder here; we keep it and resume
    again = run_cli("-action", "rereadyFailed", ws=ws, cwd=elsewhere, module="job_orchestration")
    assert again.returncode == 0, again.stdout + again.stderr
    assert state_of(ws, "flaky") == "ConfigsToRun"
    work = run_cli("-action", "newWorker", ws=ws, cwd=elsewhere, module="job_orchestration")
    assert work.returncode == 0, work.stdout + work.stderr
    info = json.loads(run_cli("show", "flaky", "--json", ws=ws).stdout)
    assert [(t["id"], t["attempts"]) for t in info["tasks"]] == [
        ("train", 1), ("test", 2), ("report", 1)]  # train's model was kept, not retrained


def test_the_numbered_prompt_on_a_terminal_runs_the_chosen_action(ws, tasks_dir):
    write_config(ws, "asked", make_config(tasks_dir, "asked", [{"id": "a", "method": "Ledger"}]))
    answer = run_on_terminal(["-m", "job_orchestration"], "1\n", ws)  # 1: readyConfigs
    assert answer.returncode == 0, answer.stderr
    prompt = "Which action would you like to perform?\n" + "".join(
        f"    {i}: {name}\n" for i, name in enumerate(ACTIONS))
    assert answer.stdout.startswith(prompt)
    assert "1 queued, 0 rejected" in answer.stdout
    assert state_of(ws, "asked") == "ConfigsToRun"

    assert run_on_terminal(["-m", "job_orchestration"], "\n", ws).returncode == 0  # folders only
    wrong = run_on_terminal(["-m", "job_orchestration"], "7\n", ws)
    assert wrong.returncode == 2
    assert "-action '7' is not one of newWorker, readyConfigs" in wrong.stderr


def run_on_terminal(args: list[str], typed: str, ws: Path) -> subprocess.CompletedProcess:
    """Run python ARGS with a real terminal (a pty) as its stdin, ``typed`` already typed."""
    main, terminal = os.openpty()
    try:
        os.write(main, typed.encode())
        return subprocess.run([sys.executable, *args], stdin=terminal, capture_output=True,
                              text=True, timeout=120,
                              env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)})
    finally:
        os.close(terminal)
        os.close(main)


def test_an_unknown_action_is_a_usage_error_naming_the_actions(ws):
    for module in ("job_orchestration", "orchestration"):
        result = run_cli("-action", "runEverything", ws=ws, module=module)
        assert result.returncode == 2
        assert result.stderr.startswith("error: -action 'runEverything' is not one of "
                                        "newWorker, readyConfigs, progressReport, rereadyFailed")


def test_a_workspace_made_by_007_works_with_our_commands(tmp_path, tasks_dir):
    ws = tmp_path / "ws007"
    for folder in FOLDERS_007:  # what 0.0.7's `python -m job_orchestration` created
        (ws / folder).mkdir(parents=True)
    write_config(ws, "old-ws", make_config(tasks_dir, "old-ws", [{"id": "a", "method": "Ledger"}]))
    ready = run_cli("ready", ws=ws)
    assert ready.returncode == 0, ready.stderr
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 0
    assert state_of(ws, "old-ws") == "ConfigsCompleted"
