"""``ready`` through the installed CLI: every kind of bad config is set aside in ConfigsFailed
with a reason naming the file, the key, the value and the fix, while the good configs readied
in the same call are queued; plus the workspace commands around it."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest
import yaml

from orchestration.cli.main import COMMANDS
from orchestration.workspace import Workspace
from tests.conftest import (FIXTURES, make_code_repo, make_config, run_cli, state_of,
                            write_config)

SECRET = "hunter2-3f9c1a7e"  # recognisable, so a leak into any file can be grepped for
TRACEBACK = "Traceback (most recent call last)"
DROP = object()  # an override that removes the key
HEAD = ("githubRepository: https://github.com/me/project\npathToTasks: @ROOT@/project/tasks\n"
        "outputDir: bad/raw\n")
PWN = 'os.system ["touch @ROOT@/pwned"]'
HALF = HEAD + "tasks:\n  - {id: tr"  # what an editor's save looks like halfway
BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}' if p else 'lol'] * 10)}]\n"
               for p, c in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg"))
BAD_TASKS = {  # folder under the batch root -> its Tasks.py (None: the folder has none)
    "syntax": "from orchestration import TaskBase\n\nclass Broken(TaskBase)\n    pass\n",
    "raises": "import os\nraise RuntimeError('no GPU on this host')\n",
    "exits": "import sys\nsys.exit(3)\n",
    "empty": None,
}


def task(**fields: object) -> list[dict]:
    """A one-task list whose task has ``fields`` set (or overridden)."""
    return [{"id": "train", "method": "Ledger", **fields}]


class Bad(NamedTuple):
    """One rejected config: its name, its content (raw YAML, bytes, or overrides of a good
    config; ``@ROOT@`` is the batch's folder) and what its error file must say."""

    name: str
    config: str | bytes | dict
    expected: list[str]


BAD = [
    # the file itself
    Bad("syntax-error", HEAD + "tasks: [{id: train, method: Ledger}\nlr: 1\n",
        ["not valid YAML at line 5", "expected ',' or ']'"]),
    Bad("half-written-long-ago", HALF, ["flow mapping started at line 5"]),
    Bad("empty-file", "", ["file is empty"]),
    Bad("only-a-comment", "# nothing here yet\n", ["file is empty"]),
    Bad("top-level-list", "- githubRepository: x\n- tasks: []\n",
        ["top level is a list, not a mapping"]),
    Bad("top-level-scalar", "just some words\n", ["top level is a str, not a mapping"]),
    Bad("duplicate-top-key", HEAD + "outputDir: again\ntasks: [{id: train, method: Ledger}]\n",
        ["outputDir: duplicate key (lines 3 and 4)"]),
    Bad("duplicate-task-key", HEAD + "tasks:\n  - {id: train, method: Ledger, method: Fail}\n",
        ["tasks[0].method: duplicate key (lines 5 and 5)"]),
    Bad("python-tag", f"!!python/object/apply:{PWN}\n",
        ["top level: !!python/object/apply:os.system (line 1) is not allowed", "remove the tag"]),
    Bad("python-tag-in-a-field", HEAD + f"tasks: [{{id: t, method: Ledger}}]\n"
        f"lr: !!python/object/apply:{PWN}\n",
        ["lr: !!python/object/apply:os.system (line 5) is not allowed"]),
    Bad("alias-bomb", BOMB, ["aliases expand to more than 100000 values"]),
    Bad("two-mebibytes", "# padding\n" * (2 * 1024 * 1024 // 10),
        ["file is 2097150 bytes", "at most 1048576 bytes (1 MiB)"]),
    Bad("not-utf8", b"githubRepository: caf\xe9\n", ["not UTF-8 text", "save the file as UTF-8"]),
    # the schema
    Bad("missing-githubRepository", {"githubRepository": DROP}, ["githubRepository: missing"]),
    Bad("missing-pathToTasks", {"pathToTasks": DROP}, ["pathToTasks: missing"]),
    Bad("missing-outputDir", {"outputDir": DROP}, ["outputDir: missing"]),
    Bad("missing-tasks", {"tasks": DROP}, ["tasks: missing"]),
    Bad("tasks-empty", {"tasks": []}, ["tasks: [] is not valid", "non-empty list"]),
    Bad("tasks-not-a-list", {"tasks": "train"}, ["tasks: 'train' is not valid"]),
    Bad("task-not-a-mapping", {"tasks": ["train"]},
        ["tasks[0]: 'train' is not a mapping; expected {id: <name>, method: <TaskBase"]),
    Bad("missing-id", {"tasks": [{"method": "Ledger"}]}, ["tasks[0].id: missing"]),
    Bad("missing-method", {"tasks": [{"id": "train"}]}, ["tasks[0].method: missing"]),
    Bad("retries-word", {"tasks": task(retries="two")},
        ["tasks[0].retries: 'two' is not valid", "whole number from 0 to 100"]),
    Bad("timeout-negative", {"tasks": task(timeout=-1)},
        ["tasks[0].timeout: -1 is not valid", "seconds > 0"]),
    Bad("timeout-word", {"tasks": task(timeout="soon")}, ["tasks[0].timeout: 'soon' is not valid"]),
    Bad("resources-word", {"tasks": task(resources={"gpu": "one"})},
        ["tasks[0].resources: {'gpu': 'one'} is not valid", "e.g. {gpu: 1}"]),
    Bad("requires-a-string", {"tasks": task() + [{"id": "eval", "method": "Ledger",
                                                  "requires": "train"}]},
        ["tasks[1].requires: 'train' is not valid", "expected a list of task ids"]),
    Bad("requireCleanGit-word", {"requireCleanGit": "yes"},
        ["requireCleanGit: 'yes' is not valid; expected true or false"]),
    Bad("duplicate-ids", {"tasks": task() + task()},
        ["tasks[1].id: 'train' is used twice; task ids must be unique"]),
    *(Bad(f"id-{label}", {"tasks": task(id=tid)}, ["tasks[0].id: ", shown, "1-100 letters"])
      for label, tid, shown in [("slash", "a/b", "'a/b'"), ("dotdot", "..", "'..'"),
                                ("dot", ".", "'.'"), ("nul", "a\0b", r"'a\x00b'"),
                                ("300-chars", "x" * 300, "xxx... (300 characters)"),
                                ("space", "pre pare", "'pre pare'")]),
    Bad("requires-unknown", {"tasks": task(requires=["prepare"])},
        ["tasks[0].requires: 'prepare' is not a task id of this config; known ids: train"]),
    Bad("requires-itself", {"tasks": task(requires=["train"])},
        ["tasks[0].requires: task 'train' requires itself"]),
    Bad("requires-cycle", {"tasks": [{"id": "a", "method": "Ledger", "requires": ["b"]},
                                     {"id": "b", "method": "Ledger", "requires": ["a"]}]},
        ["requires form a cycle a -> b -> a"]),
    Bad("several-problems", {"githubRepository": DROP, "tasks": task(retries=-1)},
        ["githubRepository: missing", "tasks[0].retries: -1 is not valid"]),
    # interpolation
    Bad("interpolation-missing-key", {"lr": "${optimiser.lr}"},
        ["lr: '${optimiser.lr}' cannot be resolved", "must name a key of this config"]),
    Bad("interpolation-cycle", {"a": "${b}", "b": "${a}"},
        ["'${b}' cannot be resolved: interpolations refer to each other in a cycle"]),
    Bad("env-not-allowed", {"token": "${oc.env:SOME_SECRET}"},
        ["token: '${oc.env:SOME_SECRET}' cannot be resolved",
         "reading environment variable 'SOME_SECRET' is not allowed",
         "JOB_ORCHESTRATION_ALLOWED_ENV"]),
    # outputDir
    Bad("outputDir-absolute", {"outputDir": "/tmp/elsewhere"},
        ["outputDir: '/tmp/elsewhere' is absolute", "e.g. sweep1/lr-0.1"]),
    Bad("outputDir-dotdot", {"outputDir": "sweep/../../escape"},
        ["outputDir: 'sweep/../../escape' contains '..'"]),
    Bad("outputDir-dot", {"outputDir": "."}, ["outputDir: '.' is Output/ itself"]),
    Bad("outputDir-through-symlink", {"outputDir": "planted/run"},
        ["outputDir: 'planted/run' leads outside Output/", "through a symlink"]),
    Bad("same-out-b", {"outputDir": "shared/run"},
        ["outputDir: folder", "is already used by experiment 'same-out-a'"]),
    Bad("outputDir-of-completed", {"outputDir": "prior//done/."},
        ["Output/prior/done is already used by experiment 'done'"]),
    Bad("outputDir-inside-another", {"outputDir": "prior/done/inner"},
        ["is already used by experiment 'done'"]),
    Bad("outputDir-around-another", {"outputDir": "prior"},
        ["is already used by experiment 'done'"]),
    # the code
    Bad("pathToTasks-missing", {"pathToTasks": "@ROOT@/nowhere"},
        ["pathToTasks: '@ROOT@/nowhere' is not a folder", "the folder holding Tasks.py"]),
    Bad("pathToTasks-without-Tasks", {"pathToTasks": "@ROOT@/empty"},
        ["@ROOT@/empty/Tasks.py does not exist"]),
    Bad("tasks-syntax-error", {"pathToTasks": "@ROOT@/syntax"},
        ["importing @ROOT@/syntax/Tasks.py failed (line 3): SyntaxError"]),
    Bad("tasks-raises-on-import", {"pathToTasks": "@ROOT@/raises"},
        ["(line 2): RuntimeError: no GPU on this host"]),
    Bad("tasks-exits-on-import", {"pathToTasks": "@ROOT@/exits"},
        ["importing @ROOT@/exits/Tasks.py failed (line 2): SystemExit: 3"]),
    Bad("method-undefined", {"tasks": task(method="Trian")},
        ["tasks[0].method: 'Trian' is not defined in Tasks.py", "Ledger"]),
    Bad("method-not-a-task", {"tasks": task(method="NotATask")},
        ["tasks[0].method: 'NotATask' is not a subclass of orchestration.TaskBase"]),
    Bad("validate-returns-problems", {"tasks": task(method="Checked", threshold=0)},
        ["tasks[0] (train): threshold must be > 0"]),
    Bad("validate-raises", {"tasks": task(method="RaisesInValidate")},
        ["RaisesInValidate.validate() raised RuntimeError: cannot validate"]),
    Bad("requireCleanGit-dirty", {"pathToTasks": "@ROOT@/dirty/tasks", "requireCleanGit": True},
        ["requireCleanGit: true, but the repository", "has uncommitted changes"]),
]
GOOD = {  # queued in the same call as every bad one
    "good": {},
    "same-out-a": {"outputDir": "shared/run"},
    "relative-tasks": {"pathToTasks": "project/tasks"},  # ready runs in the batch root
    "no-git": {"pathToTasks": "@ROOT@/plain-tasks"},
    "clean-git": {"requireCleanGit": True},
}
IGNORED = ["notes.txt", ".hidden.yaml", ".swap.yaml.swp", "backup.yaml~"]


def content(root: Path, name: str, config: str | bytes | dict) -> str | bytes:
    """The file ``name`` of the batch: a good config with ``config``'s overrides, or raw."""
    if isinstance(config, dict):
        base = make_config(root / "project" / "tasks", f"exp/{name}", task())
        merged = {k: v for k, v in {**base, **config}.items() if v is not DROP}
        config = yaml.safe_dump(merged, sort_keys=False)
    if isinstance(config, bytes):
        return config.replace(b"@ROOT@", os.fsencode(root))
    return config.replace("@ROOT@", str(root))


def expect(root: Path, fragments: list[str]) -> list[str]:
    return [f.replace("@ROOT@", str(root)) for f in fragments]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One workspace that already holds a completed experiment ``done`` (whose queued file
    was edited after ``ready``), then one ``ready`` over every bad and good config at once."""
    root = tmp_path_factory.mktemp("batch")
    make_code_repo(root / "project")
    dirty = make_code_repo(root / "dirty")
    with open(dirty / "tasks" / "Tasks.py", "a") as fh:
        fh.write("# work in progress\n")
    shutil.copytree(FIXTURES, root / "plain-tasks")  # not in any git repository
    for folder, source in BAD_TASKS.items():
        (root / folder).mkdir()
        if source is not None:
            (root / folder / "Tasks.py").write_text(source)
    ws = root / "ws"
    Workspace(ws).init()
    (root / "outside").mkdir()
    (ws / "Output" / "planted").symlink_to(root / "outside")

    write_config(ws, "done", content(root, "done", {"outputDir": "prior/done", "value": 1}))
    first = run_cli("ready", ws=ws, cwd=root)
    assert first.returncode == 0, first.stderr
    queued = ws / "ConfigsToRun" / "done.yaml"
    queued.write_text(queued.read_text().replace("value: 1", "value: 2"))
    worker = run_cli("worker", "--exit-when-empty", ws=ws, cwd=root)
    assert worker.returncode == 0, worker.stderr

    for case in BAD:
        write_config(ws, case.name, content(root, case.name, case.config))
    for name, overrides in GOOD.items():
        write_config(ws, name, content(root, name, overrides))
    write_config(ws, "done", content(root, "done", {"outputDir": "clash"}))  # name taken
    for name in IGNORED:
        (ws / "ConfigSources" / name).write_text("tasks: [broken\n")
    half = ws / "ConfigSources" / "half-written.yaml"
    half.write_text(HALF)
    soon = time.time() + 600  # "changed just now" however slow this machine is today
    os.utime(half, (soon, soon))
    ready = run_cli("ready", "--verbose", ws=ws, cwd=root, env={"SOME_SECRET": SECRET})
    return SimpleNamespace(root=root, ws=ws, ready=ready)


@pytest.mark.parametrize("case", BAD, ids=[case.name for case in BAD])
def test_bad_config_is_set_aside_with_its_reason(batch: SimpleNamespace, case: Bad) -> None:
    assert batch.ready.returncode == 2
    assert state_of(batch.ws, "good") == "ConfigsToRun"
    assert state_of(batch.ws, case.name) == "ConfigsFailed"
    error = (batch.ws / "ConfigsFailed" / f"{case.name}.error.txt").read_text()
    source = batch.ws / "ConfigSources" / f"{case.name}.yaml"
    assert error.startswith(f"{source}: config rejected:\n")
    for fragment in expect(batch.root, case.expected):
        assert fragment in error
    assert TRACEBACK not in error
    assert f"error: {source}: config rejected:" in batch.ready.stderr


def test_good_configs_beside_them_are_queued(batch: SimpleNamespace) -> None:
    for name in GOOD:
        assert state_of(batch.ws, name) == "ConfigsToRun"
        assert f"{name}: queued, output in {batch.ws / 'Output'}" in batch.ready.stdout
    # every bad one, plus the name clash
    # the bad ones, the taken name, and the file written a moment ago (judged once settled)
    assert f"{len(GOOD)} queued, {len(BAD) + 2} rejected" in batch.ready.stdout
    assert TRACEBACK not in batch.ready.stdout + batch.ready.stderr


def test_python_tags_are_never_run(batch: SimpleNamespace) -> None:
    assert not (batch.root / "pwned").exists()


def test_refused_secret_is_written_nowhere(batch: SimpleNamespace) -> None:
    assert SECRET not in batch.ready.stdout + batch.ready.stderr
    for path in batch.ws.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path


def test_symlink_out_of_output_is_not_followed(batch: SimpleNamespace) -> None:
    assert list((batch.root / "outside").iterdir()) == []


def test_name_of_a_completed_experiment_is_refused_and_left_in_place(
        batch: SimpleNamespace) -> None:
    assert (batch.ws / "ConfigSources" / "done.yaml").exists()
    assert "prior/done" in (batch.ws / "ConfigsCompleted" / "done.yaml").read_text()
    assert not (batch.ws / "Output" / "clash").exists()
    assert "name 'done' is already used by an experiment in ConfigsCompleted/; rename the " \
        "file" in batch.ready.stderr


def test_other_files_in_config_sources_are_left_alone(batch: SimpleNamespace) -> None:
    for name in IGNORED:
        assert (batch.ws / "ConfigSources" / name).read_text() == "tasks: [broken\n"
        assert not (batch.ws / "ConfigsFailed" / f"{Path(name).stem}.error.txt").exists()


def test_a_file_changed_just_now_is_judged_once_it_has_settled(batch: SimpleNamespace) -> None:
    """No silent success: a file copied a moment ago (here: dated ahead, as a skewed clock
    would) is not left unjudged; ``ready`` waits until it stops changing, then rejects it."""
    assert state_of(batch.ws, "half-written") == "ConfigsFailed"
    error = (batch.ws / "ConfigsFailed" / "half-written.error.txt").read_text()
    assert "not valid YAML" in error


def record(ws: Path, output_dir: str) -> dict:
    return json.loads((ws / "Output" / output_dir / "run.json").read_text())


def test_relative_path_to_tasks_is_taken_from_the_cwd_of_ready(batch: SimpleNamespace) -> None:
    config = record(batch.ws, "exp/relative-tasks")["config"]
    assert config["pathToTasks"] == str(batch.root / "project" / "tasks")


def test_tasks_outside_git_are_queued_with_a_no_provenance_warning(
        batch: SimpleNamespace) -> None:
    assert "warning: no-git: " in batch.ready.stderr
    assert "is not inside a git repository, so this run has no code provenance" in \
        batch.ready.stderr
    rec = record(batch.ws, "exp/no-git")
    assert rec["provenance"]["available"] is False
    assert any("no code provenance" in w for w in rec["warnings"])


def test_config_edited_after_ready_does_not_change_what_runs(batch: SimpleNamespace) -> None:
    assert "value: 2" in (batch.ws / "ConfigsCompleted" / "done.yaml").read_text()
    assert record(batch.ws, "prior/done")["config"]["value"] == 1
    assert (batch.ws / "Output" / "prior" / "done" / "train.txt").read_text() == "1"


def test_env_variable_allowed_by_the_operator_is_resolved(ws: Path, tasks_dir: Path) -> None:
    write_config(ws, "with-env", make_config(tasks_dir, "with-env", task(),
                                             token="${oc.env:SOME_SECRET}"))
    ready = run_cli("ready", ws=ws, env={"SOME_SECRET": SECRET,
                                         "JOB_ORCHESTRATION_ALLOWED_ENV": "SOME_SECRET"})
    assert ready.returncode == 0, ready.stderr
    assert state_of(ws, "with-env") == "ConfigsToRun"
    assert record(ws, "with-env")["config"]["token"] == SECRET  # allowing it means recording it


def test_readyConfigs_is_ready(ws: Path, tasks_dir: Path) -> None:
    write_config(ws, "old-name", make_config(tasks_dir, "old-name", task()))
    result = run_cli("readyConfigs", ws=ws)
    assert result.returncode == 0, result.stderr
    assert "1 queued, 0 rejected" in result.stdout
    assert state_of(ws, "old-name") == "ConfigsToRun"


def test_retry_of_a_config_rejected_at_ready_queues_it_once_fixed(
        ws: Path, tasks_dir: Path) -> None:
    bad = make_config(tasks_dir, "thresh", task(method="Checked", threshold=0))
    write_config(ws, "thresh", bad)
    assert run_cli("ready", ws=ws).returncode == 2
    assert state_of(ws, "thresh") == "ConfigsFailed"
    write_config(ws, "thresh", {**bad, "tasks": task(method="Checked", threshold=1)},
                 folder="ConfigsFailed")
    retry = run_cli("retry", "thresh", ws=ws)
    assert retry.returncode == 0, retry.stderr
    assert state_of(ws, "thresh") == "ConfigsToRun"
    assert not (ws / "ConfigsFailed" / "thresh.error.txt").exists()


def test_init_twice_is_harmless(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    first = run_cli("init", ws=root)
    assert first.returncode == 0 and "created 8 folders" in first.stdout
    (root / "ConfigSources" / "mine.yaml").write_text("lr: 1\n")
    second = run_cli("init", ws=root)
    assert second.returncode == 0 and "already set up" in second.stdout
    assert (root / "ConfigSources" / "mine.yaml").read_text() == "lr: 1\n"


def test_bare_command_creates_the_workspace_and_says_what_next(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    result = run_cli(ws=root)
    assert result.returncode == 0, result.stderr
    assert (root / "ConfigsToRun").is_dir() and (root / "Output").is_dir()
    assert f"next: put configs in {root / 'ConfigSources'}" in result.stdout
    assert "job-orchestration ready" in result.stdout


ARGS = {"show": ["x"], "logs": ["x"], "retry": ["x"], "diff": ["a", "b"], "rerun": ["x"],
        "submit": ["base.yaml"], "remove": ["x"]}


@pytest.mark.parametrize("argv", [[]] + [[c, *ARGS.get(c, [])] for c in COMMANDS if c != "demo"],
                         ids=lambda argv: " ".join(argv) or "(bare)")
def test_without_a_workspace_every_command_says_how_to_set_one(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOB_ORCHESTRATION_WORKSPACE", raising=False)
    result = run_cli(*argv, cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "--workspace" in lines[0] and "JOB_ORCHESTRATION_WORKSPACE" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("body, why", [
    ("import os\nprint('leaving')\nos._exit(0)\n", "(it exited with code 0); its last output: "
                                                  "leaving"),
    ("import ctypes\nctypes.string_at(0)\n", "(killed by SIGSEGV)"),
], ids=["os._exit", "segfault"])
def test_a_tasks_py_that_kills_its_importer_rejects_only_its_configs(
        ws: Path, tasks_dir: Path, tmp_path: Path, body: str, why: str) -> None:
    deadly = tmp_path / "deadly"
    deadly.mkdir()
    (deadly / "Tasks.py").write_text(body)
    write_config(ws, "bad", make_config(deadly, "bad", [{"id": "t", "method": "Ledger"}]))
    write_config(ws, "good", make_config(tasks_dir, "good", [{"id": "t", "method": "Ledger"}]))
    result = run_cli("ready", ws=ws)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert state_of(ws, "good") == "ConfigsToRun" and state_of(ws, "bad") == "ConfigsFailed"
    error = (ws / "ConfigsFailed" / "bad.error.txt").read_text()
    assert f"importing {deadly / 'Tasks.py'} ended its process" in error and why in error
