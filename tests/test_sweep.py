"""Sweep expansion: typed values, axes, ranges, the grid, applying a point, names."""
from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from orchestration.config import sweep
from orchestration.exceptions import UsageError

BASE = {"lr": 0.1, "seed": 0, "optimizer": {"name": "sgd", "lr": 0.5},
        "tasks": [{"id": "train", "method": "Train", "epochs": 3}]}


@pytest.mark.parametrize("text, value", [
    ("0.1", 0.1), ("1e-3", 0.001), ("-2", -2), ("3", 3), ("abc", "abc"), ("true", True),
    ("False", False), ("null", None), ("'0.1'", "0.1"), ('"a,b"', "a,b"), ("[1, a]", [1, "a"]),
    ("[]", []), ("{a: 1, b: [x]}", {"a": 1, "b": ["x"]}), ("${lr}", "${lr}"), ("", ""),
    ("1.5.2", "1.5.2")])
def test_values_are_typed_as_hydra_does(text, value):
    assert sweep.typed(text) == value
    assert type(sweep.typed(text)) is type(value)


@pytest.mark.parametrize("text, values", [
    ("0.01,0.1", [0.01, 0.1]), ("a, b", ["a", "b"]), ("range(1,4)", [1, 2, 3]),
    ("range(3)", [0, 1, 2]), ("range(0,10,4)", [0, 4, 8]), ("range(5,0,-2)", [5, 3, 1]),
    ("range(0,1,0.25)", [0, 0.25, 0.5, 0.75]), ("range(0.1,0.4,0.1)", [0.1, 0.2, 0.3]),
    ("choice(adam,sgd)", ["adam", "sgd"]), ("[1,2],[3]", [[1, 2], [3]]),
    ("'x,y',z", ["x,y", "z"]), ("${a},${oc.env:A,b}", ["${a}", "${oc.env:A,b}"])])
def test_sweep_values(text, values):
    assert sweep.parse_values(text) == values


@pytest.mark.parametrize("text, message", [
    ("range(4,1)", "empty"), ("range(1,2,0)", "step must not be 0"), ("range(a,3)", "numbers"),
    ("[1,2", "unclosed"), ("1],2", "unbalanced"), ("range(1,3),5", "whole value"),
    ("'open", "unclosed")])
def test_bad_sweep_values_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message):
        sweep.parse_values(text)


def test_overrides_from_strings_and_mappings_agree():
    from_cli = sweep.parse_axes(["optimizer.lr=0.1", "+extra=x"], ["seed=range(1,3)"])
    from_api = sweep.parse_axes({"optimizer.lr": 0.1, "+extra": "x"}, {"seed": [1, 2]})
    assert [(a.key, a.values, a.add) for a in from_cli] == \
        [(a.key, a.values, a.add) for a in from_api] == \
        [("optimizer.lr", (0.1,), ""), ("extra", ("x",), "+"), ("seed", (1, 2), "")]
    assert sweep.parse_axes(None, {"seed": "range(1,3)"})[0].values == (1, 2)
    assert sweep.parse_axes(["name=a,b"])[0].values == ("a,b",)  # --set never splits


@pytest.mark.parametrize("overrides, grid, message", [
    (["lr"], None, "expected KEY=VALUE"), (["lr=1"], ["lr=1,2"], "give each key once"),
    (["optimizer=x"], ["optimizer.lr=1,2"], "give each key once"),
    (["~lr"], None, "not supported"), (["a..b=1"], None, "not a key"),
    (None, {"seed": 3}, "not a list"), (None, {"seed": []}, "no values"),
    (["x=range(1,3)"], None, "whole value"),
    (None, ["a=range(1000)", "b=range(1000)"], "at most")])
def test_bad_overrides_are_usage_errors(overrides, grid, message):
    with pytest.raises(UsageError, match=message):
        sweep.parse_axes(overrides, grid)


def test_grid_is_the_cartesian_product_first_axis_slowest():
    axes = sweep.parse_axes(None, ["lr=0.01,0.1", "seed=1,2,3"])
    assert list(sweep.grid(axes)) == [(0.01, 1), (0.01, 2), (0.01, 3), (0.1, 1), (0.1, 2),
                                      (0.1, 3)]


def test_apply_sets_nested_keys_list_items_and_added_keys_on_a_copy():
    axes = sweep.parse_axes(["optimizer.lr=0.01", "tasks.0.epochs=9", "+new.deep=1",
                             "++lr=0.2", "++fresh=[1]"])
    point = sweep.apply(BASE, axes, [a.values[0] for a in axes], "base.yaml")
    assert point["optimizer"] == {"name": "sgd", "lr": 0.01}
    assert point["tasks"][0]["epochs"] == 9
    assert point["new"] == {"deep": 1} and point["lr"] == 0.2 and point["fresh"] == [1]
    assert BASE["optimizer"]["lr"] == 0.5 and "new" not in BASE


def test_assign_works_on_omegaconf_containers_too():
    cfg = OmegaConf.create(BASE)
    axis = sweep.parse_axes(["tasks.0.epochs=7"])[0]
    sweep.assign(cfg, axis, 7, "base.yaml")
    assert cfg.tasks[0].epochs == 7


@pytest.mark.parametrize("override, message", [
    ("lrr=1", r"lrr \(in lrr=1\): no such key in base.yaml; did you mean lr\? "
              r"\(to add a new key, write \+lrr=...\)"),
    ("optimizer.lrr=1", "did you mean optimizer.lr"),
    ("tasks.5.epochs=1", "no such key"), ("+lr=1", "already has this key"),
    ("+lr.x=1", "no such key")])
def test_unknown_or_existing_keys_are_named_with_close_matches(override, message):
    axes = sweep.parse_axes([override])
    with pytest.raises(UsageError, match=message):
        sweep.apply(BASE, axes, [axes[0].values[0]], "base.yaml")


def test_names_are_readable_sanitised_and_stable():
    axes = sweep.parse_axes(["optimizer.name=adam w/ decay"], ["lr=0.01,-0.1", "seed=1,2"])
    labels = sweep.labels(axes, BASE)
    names = [sweep.readable_name("base", labels, v) for v in sweep.grid(axes)]
    assert names[0] == "base-name_adam_w_decay-lr0.01-seed1"
    assert names[3] == "base-name_adam_w_decay-lr-0.1-seed2"
    assert names == [sweep.readable_name("base", labels, v) for v in sweep.grid(axes)]
    assert sweep.readable_name(".hidden", [], ()) == "hidden"
    assert sweep.describe(axes, ("adam w/ decay", 0.01, 1)) == \
        'optimizer.name="adam w/ decay" lr=0.01 seed=1'


def test_a_key_is_shown_by_its_last_segment_unless_another_key_ends_the_same():
    config = {"lr": 1, "optimizer": {"lr": 2, "momentum": 0.9}, "tasks": [{"epochs": 1}]}
    axes = sweep.parse_axes(["optimizer.lr=1", "optimizer.momentum=0", "tasks.0.epochs=2",
                             "+new.lr=1", "+fresh.x=1"])
    assert sweep.labels(axes, config) == ["optimizer.lr", "momentum", "epochs", "new.lr", "x"]


def test_unique_name_adds_the_config_hash_when_taken_or_too_long():
    digest = "ab" * 32
    assert sweep.unique_name("base-lr1", "base", digest, set()) == "base-lr1"
    assert sweep.unique_name("base-lr1", "base", digest, {"base-lr1"}) == "base-lr1-abababab"
    long = "base-" + "x" * 200
    assert sweep.unique_name(long, "base", digest, set()) == "base-abababab"
    assert sweep.unique_name(long, "base", digest, {"base-abababab"}) == f"base-{digest}"
    with pytest.raises(UsageError, match="all taken"):
        sweep.unique_name(long, "base", digest, {"base-abababab", f"base-{digest}"})


def test_special_floats():
    assert sweep.typed("inf") == math.inf and math.isnan(sweep.typed("nan"))


def test_python_values_become_plain_yaml_values():
    from fractions import Fraction

    axes = sweep.parse_axes({"shape": (1, 2)}, {"lr": [Fraction(1, 4)], "x": [{"a": (3,)}]})
    assert [a.values for a in axes] == [([1, 2],), (0.25,), ({"a": [3]},)]
    with pytest.raises(UsageError, match="a set cannot go into a YAML config"):
        sweep.parse_axes({"x": {1, 2}})
