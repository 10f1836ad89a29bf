"""Sweeps: ``--set``/``--sweep`` overrides -> the points of a grid, each with a stable name.

The syntax is Hydra's override grammar, which ML users already type: ``key=value`` with typed
values (``0.1`` a float, ``3`` an int, ``true`` a bool, ``null``, ``[1,2]`` a list, ``abc`` or
``'a,b'`` a string), a sweep axis as ``a,b,c``, ``choice(a,b)`` or ``range(start, stop[,
step])``, ``+key=value`` to add a key the base config lacks and ``++key=value`` to set it
either way. Everything here is pure data: nothing reads or writes files.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import numbers
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from typing import Any, Container

from ..exceptions import UsageError

MAX_POINTS = 100_000  # a typo such as range(0,1000000) should not fill the disk
MAX_NAME = 100
KEY = re.compile(r"[A-Za-z0-9_][\w-]*(\.[\w-]+)*")
INT = re.compile(r"[-+]?\d+")
FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+")
SPECIALS = {"true": True, "false": False, "null": None, "inf": math.inf, "+inf": math.inf,
            "-inf": -math.inf, "nan": math.nan}
FUNCTION = re.compile(r"(range|choice)\((.*)\)", re.S)
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
CLOSERS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Axis:
    """One overridden key and the values it takes (one for ``--set``, several for a sweep)."""

    key: str                  # dotted path, without the + prefix
    values: tuple[Any, ...]
    add: str                  # "" change an existing key, "+" add a new one, "++" either
    origin: str               # as the user wrote it, for messages


# --- parsing --------------------------------------------------------------------------------
def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside quotes and brackets (``${a,b}`` stays one item)."""
    items, depth, quote, start = [], [], "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in CLOSERS:
            depth.append(CLOSERS[char])
        elif char in CLOSERS.values():
            if not depth or depth.pop() != char:
                raise UsageError(f"{text!r}: unbalanced {char!r}")
        elif char == sep and not depth:
            items.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise UsageError(f"{text!r}: unclosed {quote or depth[-1]!r}")
    return [*items, text[start:]]


def typed(text: str) -> Any:
    """One value as Hydra types it: quoted -> str; number, bool, null, list, dict; else str."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        return [typed(item) for item in split_top(inner)] if inner.strip() else []
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1]
        pairs = [item.split(":", 1) for item in split_top(inner)] if inner.strip() else []
        if any(len(pair) != 2 for pair in pairs):
            raise UsageError(f"{text!r}: a mapping is written {{key: value, ...}}")
        return {str(typed(k)): typed(v) for k, v in pairs}
    if FUNCTION.fullmatch(text):
        raise UsageError(f"{text}: range() and choice() must be the whole value of a sweep "
                         "axis, e.g. --sweep seed=range(1,4)")
    if text.lower() in SPECIALS:
        return SPECIALS[text.lower()]
    if INT.fullmatch(text):
        return int(text)
    if FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_values(text: str) -> list[Any]:
    """The values of a sweep axis: ``a,b,c``, ``choice(a,b,c)``, ``range(start, stop[, step])``."""
    function = FUNCTION.fullmatch(text.strip())
    if function and function[1] == "range":
        return _range(text, [typed(arg) for arg in split_top(function[2])])
    return [typed(item) for item in split_top(function[2] if function else text)]


def _range(text: str, args: list[Any]) -> list[Any]:
    """Python's ``range`` (stop excluded), floats allowed as in Hydra."""
    if not 1 <= len(args) <= 3 or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise UsageError(f"{text}: expected range(stop), range(start, stop) or "
                         "range(start, stop, step) with numbers")
    start, stop, step = ([0, *args, 1] if len(args) == 1 else [*args, 1])[:3]
    if step == 0:
        raise UsageError(f"{text}: step must not be 0")
    if all(isinstance(a, int) for a in args):
        values: list[Any] = list(range(start, stop, step))
    else:  # rounding keeps 0.1 steps from yielding 0.30000000000000004 or the stop itself
        count = max(0, math.ceil(round((stop - start) / step, 9)))
        values = [round(start + i * step, 12) for i in range(count)]
    if not values:
        raise UsageError(f"{text}: the range is empty")
    return values


def _split_key(text: str, origin: str) -> tuple[str, str]:
    add = "++" if text.startswith("++") else "+" if text.startswith("+") else ""
    key = text[len(add):].strip()
    if key.startswith("~"):
        raise UsageError(f"{origin}: deleting keys (~key) is not supported; set the key instead")
    if not KEY.fullmatch(key):
        raise UsageError(f"{origin}: {key!r} is not a key; write a dotted key such as lr or "
                         "optimizer.lr")
    return key, add


def parse_override(text: str, sweep: bool) -> Axis:
    """``[+|++]key=value`` (``sweep``: ``key=v1,v2,...``) as given on the command line."""
    key_text, eq, value = text.partition("=")
    if not eq and not key_text.startswith("~"):
        raise UsageError(f"{text!r}: expected KEY=VALUE" + (",VALUE..." if sweep else ""))
    key, add = _split_key(key_text, text)
    values = parse_values(value) if sweep else [typed(value)]
    return Axis(key, tuple(values), add, text)


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
    origin = f"{key}={value!r}"
    key, add = _split_key(str(key), origin)
    if not sweep:
        values = [_plain(value, origin)]
    elif isinstance(value, str):  # the command-line form: "0.1,0.2" or "range(1,4)"
        values = parse_values(value)
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        values = [_plain(v, origin) for v in value]
    else:
        raise UsageError(f"sweep[{key!r}]: {value!r} is not a list of values; give e.g. "
                         f"{{{key!r}: [1, 2, 3]}}")
    if not values:
        raise UsageError(f"sweep[{key!r}]: no values to sweep over")
    return Axis(key, tuple(values), add, origin)


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
    """Every combination of values, the first axis varying slowest (as Hydra's basic sweeper)."""
    return itertools.product(*(axis.values for axis in axes))


# --- applying a point -------------------------------------------------------------------------
_MISSING = object()


def _child(node: Any, part: str) -> Any:
    if isinstance(node, Mapping):
        return node[part] if part in node else _MISSING
    if isinstance(node, MutableSequence) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return _MISSING


def _keys(node: Any, prefix: str = "") -> Iterator[str]:
    items = (node.items() if isinstance(node, Mapping) else
             enumerate(node) if isinstance(node, MutableSequence) else ())
    for key, value in items:
        dotted = f"{prefix}{key}"
        yield dotted
        yield from _keys(value, dotted + ".")


def _no_such_key(root: Any, axis: Axis, where: str) -> UsageError:
    close = difflib.get_close_matches(axis.key, list(_keys(root)), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return UsageError(f"{axis.key} (in {axis.origin}): no such key in {where}; {hint}"
                      f"(to add a new key, write +{axis.key}=...)")


def assign(root: Any, axis: Axis, value: Any, where: str) -> None:
    """Set ``axis.key`` to ``value`` in ``root`` (plain or OmegaConf containers, in place)."""
    *parents, last = axis.key.split(".")
    node = root
    for part in parents:
        child = _child(node, part)
        if child is _MISSING:
            if not axis.add or not isinstance(node, Mapping):
                raise _no_such_key(root, axis, where)
            node[part] = {}
            child = node[part]
        node = child
    exists = _child(node, last) is not _MISSING
    if not exists and (not axis.add or not isinstance(node, Mapping)):
        raise _no_such_key(root, axis, where)
    if exists and axis.add == "+":
        raise UsageError(f"{axis.key} (in {axis.origin}): {where} already has this key; drop "
                         "the '+' to change it, or write ++ to set it either way")
    node[int(last) if isinstance(node, MutableSequence) else last] = value


def apply(data: dict, axes: Sequence[Axis], values: Sequence[Any], where: str) -> dict:
    """A deep copy of ``data`` with one point's values set."""
    point = copy.deepcopy(data)
    for axis, value in zip(axes, values):
        assign(point, axis, copy.deepcopy(value), where)
    return point


# --- naming ---------------------------------------------------------------------------------
def show(value: Any) -> str:
    """A value on one line, as it could be typed back (``0.1``, ``abc``, ``"a b"``)."""
    if isinstance(value, str) and re.fullmatch(r"[^\s,'\"\[\]{}()=#]+", value):
        return value
    return json.dumps(value, default=str)


def describe(axes: Sequence[Axis], values: Sequence[Any]) -> str:
    """``lr=0.1 seed=2``: what makes this point."""
    return " ".join(f"{axis.key}={show(value)}" for axis, value in zip(axes, values))


def labels(axes: Sequence[Axis], config: dict) -> list[str]:
    """How each key shows in names: its last segment (``optimizer.lr`` -> ``lr``), or the
    whole dotted key when another axis or another key of ``config`` ends the same way."""
    known = set(_keys(config))
    ends = Counter(key.rsplit(".", 1)[-1] for key in known | {axis.key for axis in axes})
    last = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    return [end if ends[end] == 1 else axis.key for end, axis in zip(last, axes)]


def sanitise(text: str) -> str:
    """Only the characters a name may hold (letters, digits, ``.``, ``_``, ``-``)."""
    text = re.sub(r"_+", "_", UNSAFE_NAME.sub("_", text)).strip("_")
    return text.lstrip(".-") or "config"


def readable_name(stem: str, key_labels: Sequence[str], values: Sequence[Any]) -> str:
    """``<stem>-lr0.1-seed2``: a number follows its key directly, a word after ``_``."""
    parts = [stem]
    for label, value in zip(key_labels, values):
        text = show(value).strip('"')
        parts.append(f"{label}{'' if re.match(r'[-+.0-9]', text) else '_'}{text}")
    return sanitise("-".join(parts))


def unique_name(readable: str, stem: str, digest: str, taken: Container[str]) -> str:
    """``readable``, else (too long, or taken by a different config) it or ``stem`` + digest.

    ``digest`` is the config's sha256, so the fallback is as stable as the config itself.
    """
    prefix = readable if len(readable) <= MAX_NAME else sanitise(stem)[:MAX_NAME - 12]
    candidates = ([readable] if len(readable) <= MAX_NAME else []) + [
        f"{prefix[:MAX_NAME - 9]}-{digest[:8]}", f"{prefix[:MAX_NAME - 65]}-{digest}"]
    for name in candidates:
        if name not in taken:
            return name
    raise UsageError(f"the names {', '.join(candidates)} are all taken; rename {stem}")
