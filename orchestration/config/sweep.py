"""Overrides and sweeps: ``--set``/``--sweep`` (and ``results --where``) -> typed values.

The grammar is Hydra's own: every ``key=value`` is parsed by Hydra's override parser, so a
value means what it means to Hydra (``0.1`` and ``1e-3`` floats, ``3`` an int, ``true`` a
bool, ``null``, ``[1,2]`` a list, ``{a: 1}`` a dict, ``yes``, ``abc`` and ``'0.1'`` strings,
``${...}`` kept for ``ready`` to resolve), and a sweep axis is ``a,b,c``, ``choice(a,b)``,
``range(start, stop[, step])`` or any of Hydra's discrete sweeps (``sort``, ``shuffle``,
``tag``). The grid is the cartesian product of the axes, the first axis slowest, as Hydra's
BasicSweeper expands it. ``results --where`` types its values with the same
``parse_override``, so a point a sweep wrote can always be found again.

Our own rules on top: ``key=v`` changes a key the config has (an unknown key is an error
naming close matches), ``+key=v`` adds one, ``++key=v`` does either; in the task list a key
names a task by its id, as ``diff`` prints it (``tasks.train.timeout``). Nothing here reads
or writes files.
"""
from __future__ import annotations

import functools
import itertools
import math
import numbers
import random
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any, Union

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (ChoiceSweep, Override, OverrideType, RangeSweep,
                                              Sweep)
from hydra.errors import HydraException

from ..exceptions import UsageError
from .keys import close_matches, flatten_config, with_parents

MAX_POINTS = 100_000  # a typo such as range(0,1000000) should not fill the disk
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
Segment = Union[str, int]


@dataclass(frozen=True)
class Axis:
    """One overridden key and the values it takes (one for ``--set``, several for a sweep)."""

    key: str                  # dotted path, without the + prefix
    values: tuple[Any, ...]
    kind: OverrideType        # CHANGE an existing key, ADD a new one, FORCE_ADD either
    origin: str               # as the user wrote it, for messages
    swept: bool = False       # given as a sweep axis: part of the generated names


# --- parsing --------------------------------------------------------------------------------
@functools.cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


def _parse(text: str) -> Override:
    try:
        [override] = _parser().parse_overrides([text])
    except HydraException as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if why.startswith("Error parsing override"):
            why = str(exc).splitlines()[1]
        raise UsageError(f"{text!r} is not KEY=VALUE in Hydra's override grammar ({why}); "
                         "quote a value holding = # ' \" or brackets, e.g. note='a=b' "
                         f"(see {GRAMMAR})") from None
    key = override.key_or_group
    if override.is_delete():
        raise UsageError(f"{text}: deleting keys (~key) is not supported; set the key instead")
    if override.package is not None or "/" in key or not key:
        raise UsageError(f"{text}: {key or 'an empty key'}{'@' if override.package else ''}"
                         f"{override.package or ''} is not a config key; write a dotted key "
                         "such as lr or optimizer.lr (config groups and packages are Hydra's, "
                         "not ours)")
    return override


def _sweep_values(override: Override, text: str) -> list[Any]:
    """The values of a sweep axis, in the order Hydra's BasicSweeper would take them."""
    sweep = override.value()
    if isinstance(sweep, RangeSweep) and not all(
            isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        values = _float_range(sweep, text)
    elif isinstance(sweep, (RangeSweep, ChoiceSweep)):
        # Hydra leaves quoted strings as QuotedString objects here; value() converts them
        # the same way for a single value (hydra-core is pinned to 1.3 for this).
        values = list(override.sweep_iterator(transformer=Override._convert_value))
    else:
        kind = type(sweep).__name__.replace("Sweep", "").lower()
        raise UsageError(f"{text}: {kind}() gives no list of values to write configs for "
                         "(it is for Hydra's samplers and config groups); give the values "
                         "(a,b,c), choice(a,b) or range(start, stop, step)")
    if any(isinstance(v, Sweep) for v in values):
        raise UsageError(f"{text}: range() and choice() must be the whole value of a sweep "
                         "axis, e.g. --sweep seed=range(1,4)")
    if not values:
        raise UsageError(f"{text}: the range is empty (stop is excluded: range(1,4) is 1, 2, "
                         "3)")
    return values


def _float_range(sweep: RangeSweep, text: str) -> list[float]:
    """``start + i * step`` while before ``stop``, as Hydra documents its range.

    Hydra 1.3's own float range adds ``step`` up, so ``range(0.1,0.4,0.1)`` gives 0.1, 0.2,
    0.30000000000000004 and 0.4 (stop included); rounding the count and each value keeps
    the values the user meant and the stop excluded.
    """
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if step == 0:
        raise UsageError(f"{text}: step must not be 0")
    count = max(0, math.ceil(round((stop - start) / step, 9)))
    values = [round(start + i * step, 12) for i in range(min(count, MAX_POINTS + 1))]
    if sweep.shuffle:
        random.shuffle(values)
    return values


def parse_override(text: str, sweep: bool = False, option: str = "--set") -> Axis:
    """``[+|++]key=value`` as typed on the command line; ``sweep``: ``key=v1,v2,...`` too.

    The one typing of values: ``submit --set/--sweep`` and ``results --where`` call it
    (``option`` names the one-value option in messages).
    """
    override = _parse(text)
    if not override.is_sweep_override():
        values = [override.value()]
    elif sweep:
        values = _sweep_values(override, text)
    else:
        instead = f"use --sweep {text}, or " if option == "--set" else ""
        raise UsageError(f"{option} {text}: several values (a sweep) where one is expected; "
                         f"{instead}quote one value holding a comma: "
                         f"{override.get_key_element()}='a,b'")
    return Axis(override.key_or_group, tuple(values), override.type, text, sweep)


def _plain(value: Any, origin: str) -> Any:
    """A Python value as YAML holds it (tuples -> lists, numpy numbers -> int/float)."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if isinstance(value, (str, numbers.Integral, numbers.Real)):
        return (str if isinstance(value, str) else
                int if isinstance(value, numbers.Integral) else float)(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, origin) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, origin) for v in value]
    raise UsageError(f"{origin}: a {type(value).__name__} cannot go into a YAML config; use "
                     "str, int, float, bool, None, lists and dicts")


def _from_python(key: Any, value: Any, sweep: bool) -> Axis:
    """A mapping item: Python values are taken as they are; a string sweep value is parsed
    like ``--sweep`` (``{"seed": "range(1,4)"}``)."""
    if sweep and isinstance(value, str):
        return parse_override(f"{key}={value}", sweep=True)
    origin = f"{key}={value!r}"
    parsed = _parse(f"{key}=0")  # the key and its +/++ as Hydra reads them
    if not sweep:
        values = [_plain(value, origin)]
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        values = [_plain(v, origin) for v in value]
    else:
        raise UsageError(f"sweep[{key!r}]: {value!r} is not a list of values; give e.g. "
                         f"{{{key!r}: [1, 2, 3]}}")
    if not values:
        raise UsageError(f"sweep[{key!r}]: no values to sweep over")
    return Axis(parsed.key_or_group, tuple(values), parsed.type, origin, sweep)


def _entries(spec: Any, sweep: bool) -> list[Axis]:
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [_from_python(key, value, sweep) for key, value in spec.items()]
    if isinstance(spec, str):
        spec = [spec]
    return [parse_override(text, sweep) for text in spec]


def parse_axes(overrides: Sequence[str] | Mapping[str, Any] | None = None,
               sweep: Sequence[str] | Mapping[str, Any] | None = None) -> list[Axis]:
    """Overrides then sweep axes, each given as ``"key=value"`` strings or a mapping."""
    axes = [*_entries(overrides, sweep=False), *_entries(sweep, sweep=True)]
    for a, b in itertools.combinations(axes, 2):
        if a.key == b.key or b.key.startswith(a.key + ".") or a.key.startswith(b.key + "."):
            raise UsageError(f"{a.origin} and {b.origin} both set {min(a.key, b.key, key=len)}; "
                             "give each key once")
    count = math.prod(len(axis.values) for axis in axes)
    if count > MAX_POINTS:
        raise UsageError(f"the sweep has {count} points; at most {MAX_POINTS} per submit")
    return axes


def grid(axes: Sequence[Axis]) -> Iterator[tuple[Any, ...]]:
    """Every combination of values, the first axis varying slowest (as Hydra's BasicSweeper)."""
    return itertools.product(*(axis.values for axis in axes))


# --- where a key is -------------------------------------------------------------------------
def _task_index(tasks: list, parts: list[str]) -> tuple[int, int] | None:
    """(list index, parts used) of the task a key names: its id (ids may hold ``.``: the
    longest that leaves a key of the task wins, then one naming the whole task), else a
    list index."""
    ids = {str(t["id"]): i for i, t in enumerate(tasks) if isinstance(t, Mapping) and "id" in t}
    for used in [*range(len(parts) - 1, 0, -1), len(parts)]:
        if ".".join(parts[:used]) in ids:
            return ids[".".join(parts[:used])], used
    if parts and parts[0].isdigit() and int(parts[0]) < len(tasks):
        return int(parts[0]), 1
    return None


def locate(config: Mapping[str, Any], axis: Axis, where: str) -> tuple[Segment, ...]:
    """The path of ``axis.key`` in ``config`` as keys and list indices; an error naming
    close matches for a key the config lacks (unless added), or has (when added with +)."""
    parts = axis.key.split(".")
    path: list[Segment] = []
    node: Any = config
    while parts:
        if path == ["tasks"] and isinstance(node, MutableSequence):
            found = _task_index(node, parts)
            if found is None:
                raise _no_such_key(config, axis, where)
            path.append(found[0])
            node, parts = node[found[0]], parts[found[1]:]
        elif isinstance(node, MutableSequence) and parts[0].isdigit() \
                and int(parts[0]) < len(node):
            path.append(int(parts[0]))
            node, parts = node[int(parts[0])], parts[1:]
        elif isinstance(node, Mapping) and parts[0] in node:
            path.append(parts[0])
            node, parts = node[parts[0]], parts[1:]
        elif isinstance(node, Mapping) and axis.kind is not OverrideType.CHANGE:
            return (*path, *parts)  # added: the missing mappings are created on the way
        else:
            raise _no_such_key(config, axis, where)
    if axis.kind is OverrideType.ADD:
        raise UsageError(f"{axis.key} (in {axis.origin}): {where} already has this key; drop "
                         "the '+' to change it, or write ++ to set it either way")
    return tuple(path)


def _no_such_key(config: Mapping[str, Any], axis: Axis, where: str) -> UsageError:
    return UsageError(f"{axis.key} (in {axis.origin}): no such key in {where}; "
                      f"{close_matches(axis.key, with_parents(flatten_config(config)))}"
                      f"(to add a new key, write +{axis.key}=...)")


def assign(root: Any, path: Sequence[Segment], value: Any) -> None:
    """Set ``path`` to ``value`` in ``root`` (plain or OmegaConf containers, in place),
    creating the missing mappings on the way."""
    node = root
    for part in path[:-1]:
        if not isinstance(part, int) and part not in node:
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
