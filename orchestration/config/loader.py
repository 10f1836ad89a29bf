"""Read a config file safely and resolve it with OmegaConf.

The YAML is parsed by PyYAML's safe loader (Python object tags are refused, never built),
with duplicate keys as an error and caps on file size and alias expansion, and only then
handed to OmegaConf for interpolation. ``${oc.env:VAR}`` reads only variables the *operator*
allowed (see ``ENV_ALLOW_VAR``), so a config cannot copy a worker's secrets into a record.
"""
from __future__ import annotations

import fnmatch
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..exceptions import ConfigError

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000
ENV_ALLOW_VAR = "JOB_ORCHESTRATION_ALLOWED_ENV"
DEFAULT_ENV_ALLOW = ("HOME", "USER", "LOGNAME", "HOSTNAME", "TMPDIR", "SLURM_*",
                     "CUDA_VISIBLE_DEVICES")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain string or number",
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", seen[key],
                    f"duplicate key {key!r}: each key may appear once in a mapping",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Node count with aliases expanded, computed without expanding them (billion laughs)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # guards recursive aliases
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def _yaml_problem(exc: yaml.YAMLError) -> str:
    text = str(exc).replace("\n", " ").strip()
    if "python/" in text and "constructor" in text:
        return ("a Python object tag (!!python/...) is not allowed: configs hold plain data "
                "only; remove the tag")
    return f"not valid YAML: {text}"


def parse_yaml(path: Path) -> dict:
    """The file's plain data: a non-empty mapping, or ConfigError naming what is wrong."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ConfigError(path, [f"file is {size} bytes; a config may be at most {MAX_BYTES} "
                                 "bytes (1 MiB): keep large data in files the tasks read"])
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError(path, [f"YAML aliases expand to more than {MAX_NODES} values "
                                     "(an alias bomb?); write the values out"])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [_yaml_problem(exc)]) from None
    except RecursionError:
        raise ConfigError(path, ["YAML nests too deeply or refers to itself"]) from None
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


# OmegaConf 2.4 renamed register_new_resolver; keep working on 2.3 too.
_register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
_register("oc.env", _env_resolver, replace=True)
_register("now", _now_resolver, use_cache=True, replace=True)


def _full_key(exc: OmegaConfBaseException) -> str:
    return getattr(exc, "full_key", None) or "?"


def to_omegaconf(path: Path, data: dict) -> DictConfig:
    try:
        return OmegaConf.create(data)
    except OmegaConfBaseException as exc:
        raise ConfigError(path, [f"{_full_key(exc)}: {exc.msg if hasattr(exc, 'msg') else exc}"]
                          ) from None


def resolve(path: Path, cfg: DictConfig) -> dict:
    """Resolve every interpolation once; the result is the snapshot that runs."""
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore
    except OmegaConfBaseException as exc:
        msg = str(getattr(exc, "msg", exc)).splitlines()[0]
        raise ConfigError(path, [f"{_full_key(exc)}: cannot resolve interpolation: {msg}"]
                          ) from None
    except RecursionError:
        raise ConfigError(path, ["interpolations refer to each other in a cycle: break the "
                                 "cycle so every ${...} ends at a plain value"]) from None


def load_config(path: Path) -> dict:
    """Parse, check and resolve ``path`` into plain Python data."""
    return resolve(path, to_omegaconf(path, parse_yaml(path)))
