"""check(): every problem of a resolved config at once, each naming the dotted key, the value
found and what would be valid; a good config becomes the spec that runs."""
from __future__ import annotations

import pytest

from orchestration.config.schema import check

DROP = object()  # an override that removes the key


def config(**overrides: object) -> dict:
    base = {"githubRepository": "https://github.com/me/project", "pathToTasks": "/code/tasks",
            "outputDir": "sweep/a", "tasks": [{"id": "train", "method": "Train"}]}
    return {k: v for k, v in {**base, **overrides}.items() if v is not DROP}


def tasks(*entries: dict) -> list[dict]:
    """Task entries; ``method`` defaults to Train."""
    return [{"method": "Train", **entry} for entry in entries]


REJECTED = [
    *(pytest.param({key: DROP}, [f"{key}: missing; required: "], id=f"missing-{key}")
      for key in ("githubRepository", "pathToTasks", "outputDir", "tasks")),
    pytest.param({"githubRepository": None}, ["githubRepository: missing"], id="null-required"),
    pytest.param({"outputDir": ""}, ["outputDir: '' is not valid; expected a relative folder"],
                 id="empty-string"),
    pytest.param({"pathToTasks": 3}, ["pathToTasks: 3 is not valid; expected the folder"],
                 id="number-for-a-path"),
    pytest.param({"tasks": []}, ["tasks: [] is not valid; expected a non-empty list"],
                 id="tasks-empty"),
    pytest.param({"tasks": {"id": "train"}}, ["tasks: {'id': 'train'} is not valid"],
                 id="tasks-a-mapping"),
    pytest.param({"tasks": ["train"]}, ["tasks[0]: 'train' is not a mapping; expected {id: "],
                 id="task-a-string"),
    pytest.param({"tasks": [{"method": "Train"}]}, ["tasks[0].id: missing"], id="no-id"),
    pytest.param({"tasks": [{"id": "train"}]}, ["tasks[0].method: missing; name a TaskBase"],
                 id="no-method"),
    pytest.param({"tasks": tasks({"id": "t", "method": "my.Train"})},
                 ["tasks[0].method: 'my.Train' is not valid; expected a class name"],
                 id="method-dotted"),
    *(pytest.param({"tasks": tasks({"id": tid})}, ["tasks[0].id: ", f"{shown} is not valid",
                                                   "1-100 letters"], id=f"id-{label}")
      for label, tid, shown in [("slash", "a/b", "'a/b'"), ("dotdot", "..", "'..'"),
                                ("dot", ".", "'.'"), ("nul", "a\0b", r"'a\x00b'"),
                                ("space", "a b", "'a b'"), ("number", 7, "7"),
                                ("too-long", "x" * 101, "xx... (101 characters)")]),
    pytest.param({"tasks": tasks({"id": "t", "retries": "two"})},
                 ["tasks[0].retries: 'two' is not valid; expected a whole number from 0 to 100"],
                 id="retries-word"),
    pytest.param({"tasks": tasks({"id": "t", "retries": 101})}, ["tasks[0].retries: 101"],
                 id="retries-too-many"),
    pytest.param({"tasks": tasks({"id": "t", "retries": True})}, ["tasks[0].retries: True"],
                 id="retries-bool"),
    *(pytest.param({"tasks": tasks({"id": "t", "timeout": value})},
                   [f"tasks[0].timeout: {shown} is not valid; expected a number of seconds > 0"],
                   id=f"timeout-{shown}")
      for value, shown in [(-1, "-1"), (0, "0"), ("soon", "'soon'"), (float("nan"), "nan"),
                           (float("inf"), "inf"), (False, "False")]),
    pytest.param({"tasks": tasks({"id": "t", "resources": {"gpu": "one"}})},
                 ["tasks[0].resources: {'gpu': 'one'} is not valid", "e.g. {gpu: 1}"],
                 id="resources-word"),
    pytest.param({"tasks": tasks({"id": "t", "resources": ["gpu"]})},
                 ["tasks[0].resources: ['gpu'] is not valid"], id="resources-list"),
    pytest.param({"tasks": tasks({"id": "t", "stall_action": "kill"})},
                 ["tasks[0].stall_action: kill does nothing without stall_after; add "
                  "stall_after: <seconds"], id="stall-kill-without-stall_after"),
    pytest.param({"tasks": tasks({"id": "t", "stall_action": "halt", "stall_after": 60})},
                 ["tasks[0].stall_action: 'halt' is not valid; expected warn or kill"],
                 id="stall-action-word"),
    pytest.param({"tasks": tasks({"id": "t", "retry_on": "exception"})},
                 ["tasks[0].retry_on: 'exception' is not valid; expected a list of causes "
                  "from: exception, exit, signal"], id="retry_on-not-a-list"),
    pytest.param({"tasks": tasks({"id": "a"}, {"id": "b", "requires": "a"})},
                 ["tasks[1].requires: 'a' is not valid; expected a list of task ids"],
                 id="requires-a-string"),
    pytest.param({"requireCleanGit": "yes"},
                 ["requireCleanGit: 'yes' is not valid; expected true or false"],
                 id="requireCleanGit-word"),
    pytest.param({"tasks": tasks({"id": "a"}, {"id": "a"})},
                 ["tasks[1].id: 'a' is used twice; task ids must be unique"], id="duplicate-ids"),
    pytest.param({"tasks": tasks({"id": "a", "requires": ["zz"]})},
                 ["tasks[0].requires: 'zz' is not a task id of this config; known ids: a"],
                 id="requires-unknown"),
    pytest.param({"tasks": tasks({"id": "a", "requires": ["a"]})},
                 ["tasks[0].requires: task 'a' requires itself"], id="requires-itself"),
    pytest.param({"tasks": tasks({"id": "a", "requires": ["c"]}, {"id": "b", "requires": ["a"]},
                                 {"id": "c", "requires": ["b"]})},
                 ["tasks: requires form a cycle a -> c -> b -> a"], id="requires-cycle"),
]


@pytest.mark.parametrize("overrides, expected", REJECTED)
def test_rejected_naming_key_value_and_fix(overrides: dict, expected: list[str]) -> None:
    spec, problems = check(config(**overrides))
    assert spec is None
    for fragment in expected:
        assert any(fragment in problem for problem in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    _, problems = check(config(githubRepository=DROP, requireCleanGit=1,
                               tasks=tasks({"id": "a/b", "timeout": -5}, {"method": 3})))
    assert problems == [
        "githubRepository: missing; required: the URL of the code's repository",
        "requireCleanGit: 1 is not valid; expected true or false",
        "tasks[0].id: 'a/b' is not valid; use 1-100 letters, digits, '-', '_' or '.' "
        "(not '.' or '..')",
        "tasks[0].timeout: -5 is not valid; expected a number of seconds > 0 and at most 31622400 "
        "(a year)",
        "tasks[1].id: missing; every task needs a unique id",
        "tasks[1].method: 3 is not valid; expected a class name such as Train",
    ]


def test_duplicate_id_is_not_also_reported_as_requiring_itself() -> None:
    _, problems = check(config(tasks=tasks({"id": "a"}, {"id": "a"})))
    assert problems == ["tasks[1].id: 'a' is used twice; task ids must be unique"]


def test_good_config_becomes_the_spec_that_runs() -> None:
    data = config(lr=0.1, requireCleanGit=True, tasks=tasks(
        {"id": "prep"}, {"id": "train", "epochs": 3, "timeout": 60, "retries": 2,
                         "resources": {"gpu": 1}},
        {"id": "eval", "requires": ["train"]}, {"id": "report", "requires": []}))
    spec, problems = check(data)
    assert problems == [] and spec is not None
    assert [t.requires for t in spec.tasks] == [(), ("prep",), ("train",), ()]
    train = spec.task("train")
    assert (train.timeout, train.retries, train.resources) == (60, 2, {"gpu": 1})
    assert spec.require_clean_git is True
    assert [t.id for t in spec.sinks()] == ["eval", "report"]
    merged = spec.task_config(train)
    assert merged["lr"] == 0.1 and merged["epochs"] == 3 and "tasks" not in merged


def test_fields_the_schema_does_not_know_pass_through() -> None:
    spec, _ = check(config(model={"depth": 4}, notes=None))
    assert spec is not None and spec.require_clean_git is False
    assert spec.data["model"] == {"depth": 4} and spec.data["notes"] is None
