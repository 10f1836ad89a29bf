"""The points of a sweep: each point's YAML text and wanted name (cheap, no resolving), and
its resolved snapshot when one is needed, as ``ready`` would take it.

A point's YAML is written one top-level key at a time: the keys no axis touches are dumped
once for all points. Resolving asks OmegaConf only for the values that hold an
interpolation, on one OmegaConf object reused with each point's values set on it, with the
parse of each interpolation text remembered (``parse_once``): all three measured, see their
docstrings.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..exceptions import ConfigError, UsageError
from . import sweep as sweeps
from .loader import our_resolvers, parse_yaml, resolve, to_omegaconf
from .names import Namer, describe, show
from .schema import check
from .validate import tasks_folder

RESOLVER_CALL = re.compile(r"\$\{\s*[\w.]+\s*:")  # ${now:...}, ${oc.env:...}
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.lru_cache(maxsize=64)
def absolute_tasks(path_to_tasks: str, base: Path) -> str:
    """``pathToTasks`` as ``ready`` run in ``base`` makes it absolute (the same for most points)."""
    return str(tasks_folder(path_to_tasks, base))


def _dump(data: dict[str, Any]) -> bytes:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True).encode()


@dataclass
class Planned:
    """One point: its values, text and wanted name; the rest once it is resolved."""

    values: tuple[Any, ...]
    label: str
    readable: str
    data: dict[str, Any]
    body: bytes
    text_sha256: str
    config_sha256: str | None = None
    deterministic: bool = False  # the config hash depends on the text alone
    absolute_tasks: bool = False
    output_dir: str | None = None


class Planner:
    """The points of ``base`` x ``axes``: locates every key and checks the naming before
    anything else. Dumping whole configs was the largest cost of a resubmit, hence the
    texts of untouched keys dumped once; creating an OmegaConf object per point costs more
    than resolving it, hence one object reused."""

    def __init__(self, base: Path, axes: list[sweeps.Axis], cwd: Path, namer: dict) -> None:
        self.base, self.axes, self.cwd = base, axes, cwd
        self.data = parse_yaml(base)
        self.paths = [sweeps.locate(self.data, axis, str(base)) for axis in axes]
        self.namer = Namer(base.stem, axes, self.data, **namer)
        touched = {path[0] for path in self.paths}
        self._texts = {key: _dump({key: value}) for key, value in self.data.items()
                       if key not in touched and key != "pathToTasks"}
        self._cfg = None
        self._outputs: dict[str, Planned] = {}  # normalised outputDir -> the point
        self._inside: dict[str, Planned] = {}   # a folder holding a point's outputDir

    def points(self) -> list[Planned]:
        planned = []
        for values in sweeps.grid(self.axes):
            point = {**self.data}
            for path, value in zip(self.paths, values):
                point = _with(point, path, value)
            tasks = point.get("pathToTasks")
            if isinstance(tasks, str) and "${" not in tasks:
                point["pathToTasks"] = absolute_tasks(tasks, self.cwd)
            body = b"".join(self._texts.get(key) or _dump({key: value})
                            for key, value in point.items())
            planned.append(Planned(values, describe(self.axes, values),
                                    self.namer.name(values), point, body,
                                    hashlib.sha256(body).hexdigest()))
        return planned

    def resolve(self, plan: Planned) -> dict[str, Any]:
        """One point resolved and checked, as ``ready`` would take it; raises ConfigError."""
        where = f"{self.base} with {plan.label}" if self.axes else str(self.base)
        try:
            if self._cfg is None:
                self._cfg = to_omegaconf(self.base, plan.data)
            else:
                for path, value in zip(self.paths, plan.values):
                    sweeps.assign(self._cfg, path, value)
                    if path[0] == "pathToTasks":  # as written: made absolute
                        self._cfg["pathToTasks"] = plan.data["pathToTasks"]
            resolved = self._resolved(plan.data)
            spec, problems = check(resolved)
            if spec is None:
                raise ConfigError(self.base, problems)
        except ConfigError as exc:
            raise ConfigError(where, exc.problems) from None
        plan.absolute_tasks = os.path.isabs(resolved["pathToTasks"])
        plan.deterministic = plan.absolute_tasks and not RESOLVER_CALL.search(plan.body.decode())
        plan.output_dir = resolved["outputDir"]
        return resolved

    def _resolved(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` resolved as OmegaConf resolves it, asking OmegaConf only for the values
        holding an interpolation (or ``???``): resolving the whole config visits every node
        (0.6 ms for a 10-key config, more per key) where one interpolation costs 0.3 ms."""
        resolved = data
        try:
            with our_resolvers():
                for path in _interpolations(data):
                    node = self._cfg
                    for part in path:
                        node = node[part]  # OmegaConf resolves the value here
                    if isinstance(node, (DictConfig, ListConfig)):
                        node = OmegaConf.to_container(node, resolve=True,
                                                      throw_on_missing=True)
                    resolved = _with(resolved, path, node)
        except (OmegaConfBaseException, RecursionError):
            resolve(self.base, self._cfg)  # raises the loader's ConfigError naming the key
            raise
        return resolved

    def claim_output(self, plan: Planned) -> None:
        """Two points written by one call must not share an output folder (nor nest in
        another's): ``ready`` would reject all but the first, after the sweep was written."""
        parts = os.path.normpath(str(plan.output_dir)).split(os.sep)
        ancestors = [os.sep.join(parts[:n]) for n in range(1, len(parts))]
        key = os.sep.join(parts)
        other = next((self._outputs[k] for k in (*ancestors, key) if k in self._outputs),
                     self._inside.get(key))
        if other is not None:
            lacking = [axis.key for axis, x, y in zip(self.axes, other.values, plan.values)
                       if show(x) != show(y)]
            where = (f"both write into outputDir {key}" if other.output_dir == plan.output_dir
                     else f"write into {other.output_dir} and {plan.output_dir}, one inside "
                          "the other")
            raise UsageError(
                f"{self.base}: the points {other.label} and {plan.label} {where}: outputDir "
                f"{self.data.get('outputDir')} lacks {', '.join(lacking)}; put "
                f"{' and '.join('${' + k + '}' for k in lacking)} into it")
        self._outputs[key] = plan
        self._inside.update(dict.fromkeys(ancestors, plan))


def _interpolations(node: Any, path: tuple[sweeps.Segment, ...] = ()
                    ) -> Iterator[tuple[sweeps.Segment, ...]]:
    """The paths of the values OmegaConf resolves: strings holding ``${`` and ``???``."""
    items = (node.items() if isinstance(node, dict) else
             enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        if isinstance(value, str):
            if "${" in value or value == "???":
                yield (*path, key)
        else:
            yield from _interpolations(value, (*path, key))


def _with(node: Any, path: Sequence[sweeps.Segment], value: Any) -> Any:
    """A copy of ``node`` with ``path`` set to ``value``: only the containers on the path are
    copied (the point's other values are shared with the base and never changed)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        copy = list(node)
        copy[head] = _with(node[head], rest, value)  # type: ignore[index]
        return copy
    copy = dict(node)
    copy[head] = _with(node.get(head, {}), rest, value)
    return copy


@contextmanager
def parse_once() -> Iterator[None]:
    """Remember OmegaConf's parse of each interpolation text while the points resolve.

    OmegaConf parses a value's text (with a pure-Python ANTLR parser) every time it
    resolves it: 80% of resolving a point (0.79 ms a point with two interpolations, 0.16 ms
    with the parse remembered), and every point of a sweep holds the same texts. The parse
    is a pure function of the text and its tree is only read; the original is restored on
    exit. Without that function (another omegaconf), points resolve unaided.
    """
    import omegaconf.base

    original = getattr(omegaconf.base, "parse", None)
    if original is None:
        yield
        return
    omegaconf.base.parse = functools.lru_cache(maxsize=256)(original)
    try:
        yield
    finally:
        omegaconf.base.parse = original
