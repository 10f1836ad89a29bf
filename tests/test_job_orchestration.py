"""The ``job_orchestration`` compatibility package: 0.0.7's modules on top of ``orchestration``
(``Dict2Class`` and annotated fields, ``TaskWithInitAndValidate`` on our TaskBase, read-only
``Constants``, ``clientUtils`` through ``submit``), and 0.0.7's ``-action`` names."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from job_orchestration import Constants
from job_orchestration.clientUtils import getResults, saveConfigs
from job_orchestration.configBase import Dict2Class
from orchestration import TaskBase
from orchestration.cli import legacy
from orchestration.codehost import run_validate
from orchestration.config.tasks_module import import_tasks, task_classes
from orchestration.exceptions import ConfigError, UsageError
from orchestration.ready import ready_all
from orchestration.taskbase import prepare
from orchestration.workspace import Workspace
from tests.conftest import make_config


class Point(Dict2Class):
    x: int
    y: int


class Point3(Point):
    z: int
    label: str = "unnamed"


def test_the_TaskBase_module_holds_our_class():
    from job_orchestration.TaskBase import TaskBase as Old

    assert Old is TaskBase


def test_config_keys_are_attributes_and_raw_dict_is_the_config():
    config = {"x": 1, "y": 2, "extra": [3]}
    point = Point(config)
    assert (point.x, point.y, point.extra) == (1, 2, [3])
    assert point.raw_dict is config
    assert point.validate() == []


def test_validate_names_each_missing_annotated_field():
    assert Point({"x": 1}).validate() == ["y missing from Point: add 'y' to the config"]
    assert Point({"y": None, "x": 0}).validate() == []  # present, even when null


def test_inherited_fields_count_and_a_default_makes_a_field_optional():
    assert Point3({"x": 1}).validate() == ["y missing from Point3: add 'y' to the config",
                                           "z missing from Point3: add 'z' to the config"]
    assert Point3({"x": 1, "y": 2, "z": 3}).label == "unnamed"


def test_a_config_key_never_replaces_a_method_or_the_config_itself():
    point = Point({"x": 1, "y": 2, "validate": "yes", "raw_dict": "no"})
    assert point.validate() == []
    assert point.raw_dict["validate"] == "yes" and point.raw_dict["raw_dict"] == "no"


TASKS_007 = '''
import os
from job_orchestration.TaskBase import TaskBase
from job_orchestration.configBase import TaskWithInitAndValidate

class Train(TaskWithInitAndValidate):
    epochs: int
    outputDir: str
    def run(self):
        return os.path.join(self.outputDir, "model/x.ckpt")

class Plain(TaskBase):
    def __init__(self, config):
        self.config = config
    def run(self):
        return self.config["outputDir"]
'''


@pytest.fixture
def tasks_007(tmp_path: Path) -> dict[str, type]:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "Tasks.py").write_text(TASKS_007)
    return task_classes(import_tasks(folder))


def test_007_tasks_are_found_by_our_loader_and_checked_by_ready(tasks_007, tmp_path):
    assert {"Train", "Plain"} <= set(tasks_007)
    train = tasks_007["Train"]
    assert issubclass(train, TaskBase)
    entry = {"id": "train", "method": "Train"}
    assert run_validate(train, {"outputDir": "/o", **entry}, entry, tmp_path) == [
        "epochs missing from Train: add 'epochs' to the config"]
    assert run_validate(train, {"outputDir": "/o", "epochs": 2, **entry}, entry, tmp_path) == []


def test_framework_attributes_yield_to_config_keys_of_the_same_name(tasks_007, tmp_path):
    train = tasks_007["Train"]
    entry = {"id": "train", "method": "Train"}
    plain = {"outputDir": "/o", "epochs": 1, **entry}
    task = prepare(train(plain), plain, entry, tmp_path)
    assert task.config is plain and task.task is entry and task.output_dir == tmp_path
    assert isinstance(task.log, logging.Logger)
    assert task.run() == "/o/model/x.ckpt"
    clashing = {**plain, "task": "sst2", "log": True}  # 0.0.7 tasks read these as config
    task = prepare(train(clashing), clashing, entry, tmp_path)
    assert (task.task, task.log, task.config) == ("sst2", True, clashing)


def test_constants_are_the_workspace_folders_as_strings(tmp_path, monkeypatch):
    monkeypatch.setenv("JOB_ORCHESTRATION_WORKSPACE", str(tmp_path / "ws"))
    from job_orchestration.Constants import config_source_location, output_location

    assert output_location == str(tmp_path / "ws" / "Output")
    assert config_source_location == str(tmp_path / "ws" / "ConfigSources")
    assert (Constants.BASE_FOLDER, Constants.config_ready_location, Constants.misc_location,
            Constants.config_yaml) == (str(tmp_path / "ws"), str(tmp_path / "ws" / "ConfigsToRun"),
                                       str(tmp_path / "ws" / "Misc"), "config.yaml")
    monkeypatch.setenv("JOB_ORCHESTRATION_WORKSPACE", str(tmp_path / "other"))
    assert Constants.output_location == str(tmp_path / "other" / "Output")


def test_constants_are_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("JOB_ORCHESTRATION_WORKSPACE", str(tmp_path))
    with pytest.raises(AttributeError, match="read-only"):
        Constants.output_location = "/elsewhere"
    with pytest.raises(AttributeError, match="read-only"):
        del Constants.config_yaml
    assert Constants.output_location == str(tmp_path / "Output")


def test_constants_without_a_workspace_say_how_to_set_one(monkeypatch):
    monkeypatch.delenv("JOB_ORCHESTRATION_WORKSPACE", raising=False)
    with pytest.raises(UsageError, match="export JOB_ORCHESTRATION_WORKSPACE=DIR"):
        Constants.output_location


def test_importing_the_package_warns_nothing():
    modules = ", ".join(f"job_orchestration.{m}" for m in
                        ("TaskBase", "configBase", "Constants", "clientUtils"))
    done = subprocess.run([sys.executable, "-W", "error", "-c", f"import {modules}"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.init()
    return ws


def test_saveConfigs_writes_through_submit(workspace, tasks_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    configs = {f"config_{i}.yaml": make_config(tasks_dir, f"sweep/{i}",
                                               [{"id": "a", "method": "Ledger"}], seed=i)
               for i in range(2)}
    assert saveConfigs(configs, workspace=workspace.root) == ["config_0", "config_1"]
    written = yaml.safe_load((workspace.root / "ConfigSources" / "config_1.yaml").read_text())
    assert written == configs["config_1.yaml"]
    assert saveConfigs(configs, workspace=workspace.root) == []  # duplicates are skipped
    assert [o.name for o in ready_all(workspace) if o.queued] == ["config_0", "config_1"]


def test_saveConfigs_refuses_paths_and_invalid_configs(workspace, tasks_dir):
    good = make_config(tasks_dir, "good", [{"id": "a", "method": "Ledger"}])
    with pytest.raises(UsageError, match="not a plain file name"):
        saveConfigs({"../escape.yaml": good}, workspace=workspace.root)
    with pytest.raises(ConfigError, match=r"^bad.yaml \(saveConfigs wrote the ones before it: "
                                          r"good\): config rejected:\n  - tasks: \[\]"):
        saveConfigs({"good.yaml": good, "bad.yaml": {**good, "tasks": []}},
                    workspace=workspace.root)


def test_getResults_reads_our_experiments_and_the_runs_007_left(workspace, tasks_dir):
    for i in range(2):
        (workspace.root / "ConfigSources" / f"exp{i}.yaml").write_text(yaml.safe_dump(
            make_config(tasks_dir, f"new/{i}", [{"id": "a", "method": "Ledger"}], lr=i)))
    assert all(o.queued for o in ready_all(workspace))
    (workspace.output / "new" / "1" / "results.yaml").write_text("accuracy: 0.5\n")
    old = workspace.output / "2021_03_01" / "old"  # a run of 0.0.7, as it left it
    old.mkdir(parents=True)
    (old / "config.yaml").write_text(yaml.safe_dump({"lr": 7, "outputDir": str(old)}))
    (old / "status.yaml").write_text(yaml.safe_dump({
        "status": "COMPLETE", "start_time": "2021-03-01 10:00:00.5", "end_time": "None",
        "current_job": "test"}))
    (old / "results.yaml").write_text("accuracy: 0.9\n")

    got = getResults(workspace=workspace.root)
    assert sorted(r["accuracy"] for r in got) == [0.5, 0.9]
    assert getResults(workspace=workspace.root,
                      configFilter=lambda c: c.raw_config["lr"] == 1) == [{"accuracy": 0.5}]
    finished = getResults(workspace=workspace.root, statusFilter=lambda s: s.state == "completed"
                          and s.start_time.year == 2021 and s.end_time is None)
    assert finished == [{"accuracy": 0.9}]
    assert getResults("missing.yaml", workspace=workspace.root) == []


@pytest.mark.parametrize("argv, action, rest", [
    (["-action", "readyConfigs"], "readyConfigs", []),
    (["--workspace", "w", "-action=NEWWORKER", "--workers", "2"], "NEWWORKER",
     ["--workspace", "w", "--workers", "2"]),
])
def test_action_is_split_from_the_other_arguments(argv, action, rest):
    assert legacy.has_action(argv)
    assert legacy.split(argv) == (action, rest)


def test_actions_map_onto_our_commands_ignoring_case():
    assert legacy.command("readyconfigs") == ["ready"]
    assert legacy.command("NewWorker") == ["worker", "--exit-when-empty"]
    assert legacy.command("progressReport") == ["status", "--watch"]
    assert legacy.command("rereadyFailed") == ["retry", "--failed"]
    assert legacy.command("na") == legacy.command("") == []
    with pytest.raises(UsageError, match="'train' is not one of newWorker, readyConfigs"):
        legacy.command("train")
    with pytest.raises(UsageError, match="-action needs a value"):
        legacy.split(["-action"])
    assert not legacy.has_action(["show", "x"])

