"""Read a config file safely and resolve it with OmegaConf.

The YAML is parsed by PyYAML's safe loader (Python object tags are refused, never built),
with duplicate keys as an error and caps on file size and alias expansion, and only then
handed to OmegaConf for interpolation. ``${oc.env:VAR}`` reads only variables the *operator*
allowed (see ``ENV_ALLOW_VAR``), so a config cannot copy a worker's secrets into a record.
"""
from __future__ import annotations

import fnmatch
import functools
import inspect
import os
import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (GrammarParseError, InterpolationKeyError, MissingMandatoryValue,
                              OmegaConfBaseException, UnsupportedValueType)
from omegaconf.resolvers import oc as _omegaconf_resolvers

from ..exceptions import ConfigError

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 50
TOO_DEEP = f"YAML nests more than {MAX_DEPTH} levels deep; flatten it"
ENV_ALLOW_VAR = "JOB_ORCHESTRATION_ALLOWED_ENV"
YAML_TAG = "tag:yaml.org,2002:"
MERGE_TAG = YAML_TAG + "merge"
BINARY_TAG = YAML_TAG + "binary"
PYTHON_TAG = YAML_TAG + "python/"
PYTHON_TAG_FIX = "configs hold plain data only (such tags are never run); remove the tag"
DEFAULT_ENV_ALLOW = ("HOME", "USER", "LOGNAME", "HOSTNAME", "TMPDIR", "SLURM_*",
                     "CUDA_VISIBLE_DEVICES")

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's: it caps nesting and scans in linear time, where
    PyYAML's own scanner is quadratic in the depth of ``[[[...``), reading plain scalars the
    way OmegaConf's own YAML loader does, so a config means what it means to Hydra users:
    ``1e-3`` is a float (YAML 1.1 says a string), and dates stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != YAML_TAG + "timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(YAML_TAG + "float", re.compile(r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _key_problems(loader: yaml.constructor.SafeConstructor, node: yaml.Node, path: str,
                  seen: set[int], problems: list[str]) -> None:
    """Python tags, duplicate and non-scalar mapping keys, each named by dotted path and line.

    PyYAML keeps the last of two equal keys without a word; a config that says ``lr`` twice
    is a mistake to report, not a value to pick. Runs on the composed nodes, before anything
    is constructed.
    """
    if id(node) in seen:  # an alias: its target was checked where it was defined
        return
    seen.add(id(node))
    if node.tag.startswith(PYTHON_TAG):
        problems.append(f"{path or 'top level'}: {node.tag.replace(YAML_TAG, '!!')} (line "
                        f"{_line(node)}) is not allowed: {PYTHON_TAG_FIX}")
        return
    if node.tag == BINARY_TAG:
        problems.append(f"{path or 'top level'}: binary data (!!binary, line {_line(node)}) "
                        "is not allowed: configs hold text, numbers, booleans, lists and "
                        "mappings; keep binary data in a file the tasks read")
        return
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _key_problems(loader, child, f"{path}[{i}]", seen, problems)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *base`: later keys override, no duplicate
                _key_problems(loader, value_node, path, seen, problems)
                continue
            key = (loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode)
                   else None)
            if not isinstance(key, str):  # tasks see JSON's view: {1: x} would become {"1": x}
                shown = f" {key_node.value!r}" if isinstance(key_node, yaml.ScalarNode) else ""
                problems.append(f"{path or 'top level'} (line {_line(key_node)}): key{shown} is "
                                "not text; keys must be text: quote it, e.g. '1': ...")
                continue
            dotted = f"{path}.{key}" if path else str(key)
            if key in first:
                problems.append(f"{dotted}: duplicate key (lines {first[key]} and "
                                f"{_line(key_node)}); each key may appear once: keep one")
            else:
                first[key] = _line(key_node)
            _key_problems(loader, value_node, dotted, seen, problems)


def _shape(node: yaml.Node, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """Node count and depth with aliases expanded, computed without expanding them (billion
    laughs); OmegaConf recurses per level, so depth is capped too."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = (MAX_NODES + 1, MAX_DEPTH + 1)  # an alias inside its own anchor: endless
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = []
    shapes = [_shape(child, memo) for child in children]
    memo[id(node)] = (1 + sum(size for size, _ in shapes),
                      1 + max((depth for _, depth in shapes), default=0))
    return memo[id(node)]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line that points at the place in the file (1-based)."""
    text = str(exc).replace("\n", " ").strip()
    if "python/" in text and "constructor" in text:
        return f"a Python object tag (!!python/...) is not allowed: {PYTHON_TAG_FIX}"
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"not valid YAML: {text}"
    mark = exc.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    context = ""
    if exc.context and exc.context_mark is not None:
        context = f" ({exc.context} started at line {exc.context_mark.line + 1})"
    return f"not valid YAML at {where}: {exc.problem}{context}"


def parse_yaml(path: Path, source: bytes | None = None) -> dict:
    """The file's plain data: a non-empty mapping, or ConfigError naming what is wrong.

    ``source`` is the file's content when the caller has read it already (and hashed it:
    reading it twice could hash one version and parse another)."""
    size = path.stat().st_size if source is None else len(source)
    if size > MAX_BYTES:
        raise ConfigError(path, [f"file is {size} bytes; a config may be at most {MAX_BYTES} "
                                 "bytes (1 MiB): keep large data in files the tasks read"])
    try:
        text = (path.read_bytes() if source is None else source).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text ({exc.reason} at byte {exc.start}); save "
                                 "the file as UTF-8"]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        size, depth = _shape(node, {}) if node is not None else (0, 0)
        if size > MAX_NODES:
            raise ConfigError(path, [f"YAML aliases expand to more than {MAX_NODES} values "
                                     "(an alias bomb, or an alias inside its own anchor); "
                                     "write the values out"])
        if depth > MAX_DEPTH:
            raise ConfigError(path, [TOO_DEEP])
        problems: list[str] = []
        if node is not None:
            _key_problems(loader, node, "", set(), problems)
        if problems:
            raise ConfigError(path, problems)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [_yaml_problem(exc)]) from None
    except RecursionError:
        raise ConfigError(path, [TOO_DEEP]) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ConfigError(path, [f"a value cannot be read: {exc}; write it as text (quoted)"
                                 " or as a smaller number"]) from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(path, ["file is empty: a config is a mapping with githubRepository, "
                                 "pathToTasks, outputDir and tasks"])
    if not isinstance(data, dict):
        raise ConfigError(path, [f"top level is a {type(data).__name__}, not a mapping: a "
                                 "config is `key: value` lines (githubRepository, pathToTasks, "
                                 "outputDir, tasks)"])
    return data


def _allowed_env(name: str) -> bool:
    extra = [p.strip() for p in os.environ.get(ENV_ALLOW_VAR, "").split(",") if p.strip()]
    return any(fnmatch.fnmatchcase(name, pat) for pat in (*DEFAULT_ENV_ALLOW, *extra))


def _env_resolver(name: str, default: Any = "__no_default__") -> Any:
    if not _allowed_env(name):
        raise ValueError(f"reading environment variable {name!r} is not allowed: configs may "
                         f"read {', '.join(DEFAULT_ENV_ALLOW)} and the names listed in "
                         f"${ENV_ALLOW_VAR} (comma-separated, set where `ready` runs)")
    if name in os.environ:
        return os.environ[name]
    if default != "__no_default__":
        return default
    raise ValueError(f"environment variable {name!r} is not set")


def _now_resolver(fmt: str = "%Y-%m-%d_%H-%M-%S") -> str:
    return datetime.now().strftime(fmt)


@functools.cache
def _takes_replace() -> bool:
    return "replace" in inspect.signature(OmegaConf.register_resolver).parameters


def _register(name: str, function: Any, use_cache: bool = False) -> None:
    """``register_resolver`` where it takes ``replace`` (OmegaConf 2.4), else its 2.1-2.3
    name ``register_new_resolver`` (2.3's ``register_resolver`` is an older, different API)."""
    if _takes_replace():
        OmegaConf.register_resolver(name, function, use_cache=use_cache, replace=True)
    else:
        OmegaConf.register_new_resolver(name, function, use_cache=use_cache, replace=True)


_active = 0  # how many our_resolvers() blocks are open: only the outermost registers


@contextmanager
def our_resolvers() -> Iterator[None]:
    """Our restricted ``oc.env`` and ``now`` for our own resolving only: registered for the
    process, OmegaConf's resolvers are global, so they would reach whatever else resolves
    configs here (user code in a process forked from this one, a script using our API).
    Nested blocks reuse the outer registration (a sweep of 1000 points registers once)."""
    global _active
    if _active == 0:
        _register("oc.env", _env_resolver)
        _register("now", _now_resolver, use_cache=True)
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            _register("oc.env", _omegaconf_resolvers.env)
            OmegaConf.clear_resolver("now")


def _omegaconf_problem(exc: OmegaConfBaseException) -> str:
    """``key: 'raw value' why; fix`` from OmegaConf's multi-line message."""
    node = getattr(exc, "child_node", None)
    raw = node._value() if node is not None else getattr(exc, "value", None)
    shown = f" {raw!r}" if raw is not None else ""
    why = str(getattr(exc, "msg", exc)).splitlines()[0]
    why = re.sub(r"^\w+ raised while resolving interpolation: ", "", why)
    if isinstance(exc, GrammarParseError):
        why = (f"is not a valid interpolation ({why}); write ${{key}} or ${{key.sub}}, or "
               "\\${...} for a literal ${")
    elif "Recursive interpolation" in why:
        why = "cannot be resolved: interpolations refer to each other in a cycle; break it"
    elif isinstance(exc, InterpolationKeyError):
        why = f"cannot be resolved: {why}; every ${{...}} must name a key of this config"
    elif isinstance(exc, MissingMandatoryValue):
        why = "is a required value (???) that was never set; give it a value"
    elif isinstance(exc, UnsupportedValueType):
        why = (f"is a {type(raw).__name__}, not plain data; quote it to keep it as text, "
               f"e.g. '{raw}'")
    else:
        why = f"cannot be resolved: {why}"
    return f"{getattr(exc, 'full_key', None) or 'top level'}:{shown} {why}"


def to_omegaconf(path: Path, data: dict) -> DictConfig:
    try:
        return OmegaConf.create(data)
    except OmegaConfBaseException as exc:
        raise ConfigError(path, [_omegaconf_problem(exc)]) from None


def resolve(path: Path, cfg: DictConfig) -> dict:
    """Resolve every interpolation once; the result is the snapshot that runs."""
    try:
        with our_resolvers():
            return OmegaConf.to_container(cfg, resolve=True,  # type: ignore[return-value]
                                          throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(path, [_omegaconf_problem(exc)]) from None
    except RecursionError:
        raise ConfigError(path, ["interpolations refer to each other in a cycle: break the "
                                 "cycle so every ${...} ends at a plain value"]) from None


def load_config(path: Path, source: bytes | None = None) -> dict:
    """Parse, check and resolve ``path`` (or its already read ``source``) into plain data."""
    return resolve(path, to_omegaconf(path, parse_yaml(path, source)))
