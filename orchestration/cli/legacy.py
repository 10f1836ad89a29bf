"""job-orchestration 0.0.7's ``-action NAME`` commands, run as the commands that replace them.

``python -m job_orchestration -action readyConfigs`` (and the same after ``python -m
orchestration`` or ``job-orchestration``) creates the workspace folders, as 0.0.7 did before
every action, then runs ``ready``; the other arguments go to that command. Names are matched
without regard to case, as 0.0.7 did; an empty action (or ``na``) only creates the folders.
"""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

from ..exceptions import UsageError
from ..reporter import Reporter
from .exit_codes import ExitCode

FLAG = "-action"
# 0.0.7's actions in its order (its numbered prompt lists them so) -> our command
ACTIONS: dict[str, list[str]] = {
    "newWorker": ["worker", "--exit-when-empty"],
    "readyConfigs": ["ready"],
    "progressReport": ["status", "--watch"],
    "rereadyFailed": ["retry", "--failed"],
}


def has_action(argv: Sequence[str]) -> bool:
    return any(arg == FLAG or arg.startswith(FLAG + "=") for arg in argv)


def split(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The value of ``-action`` and the other arguments."""
    for i, arg in enumerate(argv):
        if arg.startswith(FLAG + "="):
            return arg[len(FLAG) + 1:], [*argv[:i], *argv[i + 1:]]
        if arg == FLAG:
            if i + 1 == len(argv):
                raise UsageError(f"{FLAG} needs a value: one of {', '.join(ACTIONS)}")
            return argv[i + 1], [*argv[:i], *argv[i + 2:]]
    raise UsageError(f"no {FLAG} given")


def command(action: str) -> list[str]:
    """Our command for a 0.0.7 action; ``[]`` when it only creates the folders."""
    wanted = action.strip().lower()
    if wanted in ("", "na"):
        return []
    for name, ours in ACTIONS.items():
        if name.lower() == wanted:
            return ours
    raise UsageError(f"{FLAG} {action!r} is not one of {', '.join(ACTIONS)} (the commands "
                     "of job-orchestration 0.0.7; see `job-orchestration --help` for ours)")


def run(argv: Sequence[str], main: Callable[[list[str]], int]) -> int:
    """Create the folders, then run the command ``-action`` names; its exit code."""
    try:
        action, rest = split(argv)
        ours = command(action)
    except UsageError as exc:
        Reporter().error(str(exc))
        return exc.exit_code
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace")
    known = common.parse_known_args(rest)[0]
    code = main(["init"] + (["--workspace", known.workspace] if known.workspace else []))
    if code or not ours:
        return code
    code = main([*ours, *rest])  # 0.0.7 exited 0 when there was nothing to do: scripts rely on it
    return ExitCode.OK if code == ExitCode.NOTHING_TO_DO else code
