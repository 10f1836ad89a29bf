"""Experiment names for the points of a sweep: readable, in sweep order when sorted, or the
user's own (``--name-keys``, ``--name TEMPLATE``).

Workers claim configs in name order, so a name must sort like its point: the numbers of an
axis are written with the same number of integer digits (``seed02`` ... ``seed10``) and in
positional notation (``0.0001``, never ``1e-04``). An axis with a negative or non-finite
value keeps its plain numbers (no padding makes ``-1`` sort before ``-10``).
"""
from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from decimal import Decimal
from typing import Any, Container, Sequence

from ..exceptions import UsageError
from .keys import flatten_config
from .sweep import Axis

MAX_NAME = 100
NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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
    known = set(flatten_config(config)) | {axis.key for axis in axes}
    ends = Counter(key.rsplit(".", 1)[-1] for key in known)
    last = [axis.key.rsplit(".", 1)[-1] for axis in axes]
    return [end if ends[end] == 1 else axis.key for end, axis in zip(last, axes)]


def sanitise(text: str) -> str:
    """Only the characters a name may hold (letters, digits, ``.``, ``_``, ``-``)."""
    text = re.sub(r"_+", "_", UNSAFE_NAME.sub("_", text)).strip("_")
    return text.lstrip(".-") or "config"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positional(value: int | float) -> str:
    return str(value) if isinstance(value, int) else format(Decimal(repr(value)), "f")


def sortable_texts(values: Sequence[Any]) -> dict[Any, str]:
    """Each value of one axis as it shows in names (keyed by ``show(value)``): numbers padded
    to the axis's widest integer part, so names sort like the numbers."""
    if not values or not all(_is_number(v) and math.isfinite(v) and v >= 0 for v in values):
        return {show(v): show(v).strip('"') for v in values}
    texts = {show(v): _positional(v) for v in values}
    width = max(len(text.split(".")[0]) for text in texts.values())
    return {key: text.zfill(width + len(text) - len(text.split(".")[0]))
            for key, text in texts.items()}


class Namer:
    """The wanted name of each point: ``<stem>-<label><value>...`` over the swept keys (or
    ``keys``, in that order), or ``template`` filled in (``sweep-{lr}-{seed:03d}``, keys by
    label or dotted key). A bad choice is a UsageError before anything is written."""

    def __init__(self, stem: str, axes: Sequence[Axis], config: dict,
                 keys: Sequence[str] | None = None, template: str | None = None) -> None:
        if keys is not None and template is not None:
            raise UsageError("give --name-keys or --name, not both")
        self.stem, self.axes, self.template = stem, list(axes), template
        self.labels = labels(axes, config)
        self.texts = [sortable_texts(axis.values) for axis in axes]
        self._by_key = {**{a.key: i for i, a in enumerate(axes)},
                        **{label: i for i, label in enumerate(self.labels)}}
        # (literal text before, axis index, format spec); a template may end in literal text
        self.fields: list[tuple[str, int, str]] = []
        self.tail = ""
        if template is not None:
            self._parse_template(template)
            self._check_complete(f"--name {template!r}")
        elif keys is not None:
            self.fields = [("-", self._index(k, "--name-keys"), "") for k in keys]
            self._check_complete(f"--name-keys {','.join(keys)}")
        else:
            self.fields = [("-", i, "") for i, axis in enumerate(axes) if axis.swept]

    def _index(self, key: str, option: str) -> int:
        if key not in self._by_key:
            raise UsageError(f"{option}: {key!r} is not a key this submit sets or sweeps; "
                             f"use one of {', '.join(sorted(self._by_key)) or '(none)'}")
        return self._by_key[key]

    def _parse_template(self, template: str) -> None:
        option = f"--name {template!r}"
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}; write keys in braces, e.g. "
                             "sweep-{lr}-{seed}") from None
        for literal, field, spec, conversion in parts:
            if not NAME_CHARS.fullmatch(literal):
                raise UsageError(f"{option}: {literal!r} holds characters a name may not "
                                 "hold (letters, digits, '.', '_' and '-')")
            if field is None:
                self.tail = literal
            elif conversion or not field:
                raise UsageError(f"{option}: write {{key}} or {{key:format}} such as "
                                 "{seed:03d}; {} and !r are not supported")
            else:
                self.fields.append((literal, self._index(field, option), spec or ""))
        if not template:
            raise UsageError("--name: the template is empty")

    def _check_complete(self, option: str) -> None:
        """Every key whose value varies must be in the name, or two points share it."""
        shown = {index for _, index, _ in self.fields}
        missing = [self.labels[i] for i, axis in enumerate(self.axes)
                   if i not in shown and len({show(v) for v in axis.values}) > 1]
        if missing:
            raise UsageError(f"{option} leaves out {', '.join(missing)}, which the sweep "
                             "varies: points would share a name; add "
                             + ("them" if len(missing) > 1 else "it"))

    def name(self, values: Sequence[Any]) -> str:
        """The wanted name of the point with these ``values`` (one per axis)."""
        if self.template is not None:
            return sanitise("".join(literal + self._formatted(index, spec, values[index])
                                    for literal, index, spec in self.fields) + self.tail)
        parts = [self.stem]
        for _, index, _ in self.fields:
            text = self.texts[index][show(values[index])]
            joiner = "" if re.match(r"[-+.0-9]", text) else "_"
            parts.append(f"{self.labels[index]}{joiner}{text}")
        return sanitise("-".join(parts))

    def _formatted(self, index: int, spec: str, value: Any) -> str:
        if not spec:
            return self.texts[index][show(value)]
        try:
            return format(value, spec)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--name {self.template!r}: {{{self.labels[index]}:{spec}}} "
                             f"cannot format {value!r} ({exc})") from None


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
