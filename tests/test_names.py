"""Names of sweep points: readable, sorting like their numbers, chosen keys, templates."""
from __future__ import annotations

import pytest

from orchestration.config import sweep
from orchestration.config.names import Namer, describe, labels, sortable_texts, unique_name
from orchestration.exceptions import UsageError

BASE = {"lr": 0.1, "seed": 0, "optimizer": {"name": "sgd", "lr": 0.5},
        "tasks": [{"id": "train", "method": "Train", "epochs": 3}]}


def names(overrides=None, grid=None, **choice) -> list[str]:
    axes = sweep.parse_axes(overrides, grid)
    namer = Namer("base", axes, BASE, **choice)
    return [namer.name(values) for values in sweep.grid(axes)]


def test_names_are_readable_sanitised_and_name_only_swept_keys():
    assert names(["optimizer.name=adam w/ decay"], ["lr=0.01,-0.1", "seed=1,2"]) == [
        "base-lr0.01-seed1", "base-lr0.01-seed2", "base-lr-0.1-seed1", "base-lr-0.1-seed2"]
    assert names(None, ["optimizer.name=adam w/ decay,sgd"]) == [
        "base-name_adam_w_decay", "base-name_sgd"]
    assert names(["lr=0.2"]) == ["base"]  # a --set is not in the name unless asked
    axes = sweep.parse_axes(["optimizer.name=adam w/ decay"], ["lr=0.01"])
    assert describe(axes, ("adam w/ decay", 0.01)) == 'optimizer.name="adam w/ decay" lr=0.01'
    assert Namer(".hidden", [], BASE).name(()) == "hidden"


@pytest.mark.parametrize("values, texts", [
    ([2, 10, 100], ["002", "010", "100"]), ([1, 2, 3], ["1", "2", "3"]),
    ([0.5, 2.5, 10.0], ["00.5", "02.5", "10.0"]), ([1e-5, 1e-4, 0.001], [
        "0.00001", "0.0001", "0.001"]), ([1, 2.5, 10], ["01", "02.5", "10"]),
    ([-1, 10], ["-1", "10"]), ([1, float("inf")], ["1", "Infinity"]),
    (["a", "b c"], ["a", "b c"]), ([True, 10], ["true", "10"])])
def test_numbers_of_an_axis_are_written_to_sort_like_numbers(values, texts):
    assert list(sortable_texts(values).values()) == texts


def test_names_of_a_wide_axis_sort_in_sweep_order():
    generated = names(None, ["lr=1e-4,1e-3,0.01", "seed=range(0,12)"])
    assert generated[:2] == ["base-lr0.0001-seed00", "base-lr0.0001-seed01"]
    assert sorted(generated) == generated


def test_a_key_is_shown_by_its_last_segment_unless_another_key_ends_the_same():
    config = {"lr": 1, "optimizer": {"lr": 2, "momentum": 0.9},
              "tasks": [{"id": "train", "epochs": 1}]}
    axes = sweep.parse_axes(["optimizer.lr=1", "optimizer.momentum=0", "tasks.train.epochs=2",
                             "+new.lr=1", "+fresh.x=1"])
    assert labels(axes, config) == ["optimizer.lr", "momentum", "epochs", "new.lr", "x"]


def test_name_keys_choose_and_order_the_keys_set_ones_too():
    assert names(["optimizer.name=adam"], ["lr=0.1,0.2", "seed=1"],
                 keys=["seed", "lr", "name"]) == ["base-seed1-lr0.1-name_adam",
                                                  "base-seed1-lr0.2-name_adam"]
    assert names(None, ["lr=0.1,0.2", "seed=1"], keys=["lr"]) == ["base-lr0.1", "base-lr0.2"]


def test_a_template_names_keys_by_label_or_dotted_key_with_formats():
    assert names(None, ["optimizer.lr=0.5,10.0", "seed=2,10"],
                 template="sweep-{optimizer.lr}-s{seed}") == [
        "sweep-00.5-s02", "sweep-00.5-s10", "sweep-10.0-s02", "sweep-10.0-s10"]
    assert names(None, ["+optimizer.momentum=0.9", "seed=1"], template="m{momentum}") == [
        "m0.9"]
    assert names(None, ["optimizer.lr=0.1", "seed=range(1,3)"],
                 template="{optimizer.lr:.0e}_{seed:03d}") == ["1e-01_001", "1e-01_002"]
    assert names(["lr=3"], template="fixed") == ["fixed"]


@pytest.mark.parametrize("choice, message", [
    ({"template": "s-{lr}"}, "leaves out seed, which the sweep varies"),
    ({"keys": ["lr"]}, "leaves out seed"),
    ({"template": "s/{lr}-{seed}"}, "characters a name may not hold"),
    ({"template": "s-{lr}-{sed}"}, r"'sed' is not a key this submit sets or sweeps; use one "
                                   r"of lr, seed"),
    ({"template": "s-{lr}-{seed"}, "expected '}'"), ({"template": "s-{}-{lr}-{seed}"},
                                                     r"\{\} and !r are not supported"),
    ({"template": "{lr!r}-{seed}"}, "not supported"), ({"template": ""}, "empty"),
    ({"template": "{lr:d}-{seed}"}, r"\{lr:d\} cannot format 0.1"),
    ({"keys": ["lr", "seed"], "template": "x"}, "not both")])
def test_bad_name_choices_are_usage_errors(choice, message):
    with pytest.raises(UsageError, match=message):
        names(None, ["lr=0.1,0.2", "seed=1,2"], **choice)


def test_unique_name_adds_the_config_hash_when_taken_or_too_long():
    digest = "ab" * 32
    assert unique_name("base-lr1", "base", digest, set()) == "base-lr1"
    assert unique_name("base-lr1", "base", digest, {"base-lr1"}) == "base-lr1-abababab"
    long = "base-" + "x" * 200
    assert unique_name(long, "base", digest, set()) == "base-abababab"
    assert unique_name(long, "base", digest, {"base-abababab"}) == f"base-{digest}"
    with pytest.raises(UsageError, match="all taken"):
        unique_name(long, "base", digest, {"base-abababab", f"base-{digest}"})
