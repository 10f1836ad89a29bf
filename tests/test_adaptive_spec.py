"""The ``search:`` block: what a user may write, the grid it gives, and the errors they see."""
from __future__ import annotations

import pytest

from orchestration.adaptive.spec import parse_search

TASKS = ["train", "eval.v2"]


def block(**params) -> dict:
    return {"objective": "eval.v2.loss", "trials": 20, "parallel": 2, "params": params}


def problems_of(data: dict) -> str:
    spec, problems = parse_search(data, TASKS)
    assert spec is None
    return "\n".join(problems)


def test_a_full_block_and_its_defaults():
    spec, problems = parse_search(block(lr={"type": "float", "low": 1.0e-4, "high": 1.0,
                                            "log": True},
                                        layers={"type": "int", "low": 1, "high": 4},
                                        optimizer={"type": "categorical",
                                                   "choices": ["adam", "sgd"]}), TASKS)
    assert problems == []
    assert (spec.objective_task, spec.objective_key) == ("eval.v2", ("loss",))  # longest id
    assert (spec.direction, spec.sampler, spec.seed) == ("minimize", "tpe", None)
    assert spec.grid_size is None and spec.budget == 20  # lr is continuous


def test_grid_values_from_step_n_log_int_and_choices():
    spec, _ = parse_search(dict(block(
        a={"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
        b={"type": "float", "low": 0.0, "high": 1.0, "n": 4},
        c={"type": "float", "low": 1.0e-3, "high": 1.0e-1, "n": 3, "log": True},
        d={"type": "int", "low": 2, "high": 8, "step": 3},
        e={"type": "categorical", "choices": ["x", 1, True, None]}), sampler="grid"), TASKS)
    values = {p.name: p.grid_values() for p in spec.params}
    assert values == {"a": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "b": [0.0, 0.333333333333,
                                                                0.666666666667, 1.0],
                      "c": [0.001, 0.01, 0.1], "d": [2, 5, 8], "e": ["x", 1, True, None]}
    assert spec.grid_size == 6 * 4 * 3 * 3 * 4
    assert spec.budget == 20  # fewer trials than points: trials wins


def test_a_grid_smaller_than_trials_sets_the_budget():
    spec, _ = parse_search(dict(block(x={"type": "categorical", "choices": [1, 2]},
                                      y={"type": "int", "low": 0, "high": 2}),
                                sampler="grid", trials=100), TASKS)
    assert spec.budget == 6


@pytest.mark.parametrize("params, expected", [
    ({"lr": {"type": "float", "low": "small", "high": 1.0}},
     "search.params.lr.low: 'small' is not valid; expected a number"),
    ({"lr": {"type": "float", "low": 1.0, "high": 0.1}},
     "search.params.lr: low 1.0 is above high 0.1; swap them"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
     "search.params.lr.log: a log scale needs low > 0"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}},
     "search.params.lr.step: 0.3 does not divide high - low"),
    ({"lr": {"type": "float", "low": 0.0, "high": 1.0, "stp": 0.1}},
     "search.params.lr.stp: unknown key; allowed: type, low, high, log, step, n"),
    ({"lr": {"type": "uniform", "low": 0.0, "high": 1.0}},
     "search.params.lr.type: 'uniform' is not valid; expected float, int or categorical"),
    ({"opt": {"type": "categorical", "choices": [[1, 2]]}},
     "search.params.opt.choices: [1, 2] is not valid"),
    ({"outputDir": {"type": "categorical", "choices": ["a"]}},
     "search.params.outputDir: outputDir is set by the search itself"),
    ({"n": {"type": "int", "low": 1, "high": 2.5}},
     "search.params.n.high: 2.5 is not valid; expected a whole number"),
])
def test_bad_params_name_the_key_and_the_fix(params, expected):
    assert expected in problems_of(block(**params))


def test_grid_needs_finite_params_and_other_fields_are_checked():
    text = problems_of({"objective": "test.loss", "trials": 0, "parallel": "3",
                        "sampler": "grid", "direction": "down", "seed": -1, "extra": 1,
                        "results_file": ["r.yaml"],
                        "params": {"lr": {"type": "float", "low": 0.0, "high": 1.0}}})
    for expected in ("search.extra: unknown key",
                     "search.objective: 'test.loss' names no task of this config; start it "
                     "with a task id: train, eval.v2",
                     "search.trials: 0 is not valid", "search.parallel: '3' is not valid",
                     "search.direction: 'down' is not valid; expected one of minimize, maximize",
                     "search.seed: -1 is not valid",
                     "search.results_file: ['r.yaml'] is not valid; expected a file path",
                     "search.params.lr: sampler grid needs a finite set of values; add step"):
        assert expected in text
