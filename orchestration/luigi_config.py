"""Luigi's own config files, read as Luigi reads them (same files, same order), without
importing Luigi: the scheduler a worker uses by default (``[core] default-scheduler-url``)
and the resource limits (``[resources]``) its scheduler enforces, which ``ready`` checks each
step's ``resources`` against: a step asking for more than the limit would never be run.
"""
from __future__ import annotations

import configparser
import os

LUIGI_CONFIGS = ("/etc/luigi/client.cfg", "/etc/luigi/luigi.cfg", "client.cfg", "luigi.cfg")


def _files() -> list[str]:
    extra = os.environ.get("LUIGI_CONFIG_PATH")
    return [*LUIGI_CONFIGS, *([extra] if extra else [])]


def scheduler_url() -> str | None:
    """``[core] default-scheduler-url`` (or its underscore spelling), if set."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(_files())
    for key in ("default-scheduler-url", "default_scheduler_url"):
        if parser.get("core", key, fallback=None):
            return parser.get("core", key)
    return None


def resource_limits() -> dict[str, tuple[int, str]]:
    """``[resources]``: resource name -> (its limit, the file that sets it; a later file
    overrides an earlier one, as in Luigi). Values that are not whole numbers are left to
    Luigi to complain about."""
    limits: dict[str, tuple[int, str]] = {}
    for path in _files():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            if not parser.read(path) or not parser.has_section("resources"):
                continue
        except configparser.Error:
            continue  # Luigi says what is wrong with its own file
        for name, value in parser.items("resources"):
            try:
                limits[name] = (int(value), os.path.abspath(path))
            except ValueError:
                continue
    return limits


def resource_problems(tasks: list[tuple[str, dict[str, int]]],
                      limits: dict[str, tuple[int, str]]) -> list[str]:
    """A problem per step of ``tasks`` (id, resources) that asks for more of a resource
    than ``limits`` allow, naming the task, the limit and where it is set."""
    problems = []
    for i, (task_id, resources) in enumerate(tasks):
        for name, wanted in resources.items():
            if name in limits and wanted > limits[name][0]:
                limit, path = limits[name]
                problems.append(
                    f"tasks[{i}].resources.{name}: task {task_id!r} asks for {wanted}, more "
                    f"than the {limit} that [resources] {name} = {limit} in {path} allows; "
                    "the scheduler would never run it: lower it, or raise the limit there")
    return problems
