"""Entry point: parse the command line, run one command, map errors to exit codes.

Each command lives in its own ``cmd_<name>.py`` with ``add_arguments`` and ``run``; they
import what they need inside ``run`` so that ``--help`` and quick commands start fast.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
import traceback
from types import ModuleType

from .. import __version__
from ..exceptions import OrchestrationError
from ..reporter import Reporter
from ..workspace import ENV_VAR, Workspace
from .exit_codes import ExitCode
from . import legacy

COMMANDS = ["init", "ready", "worker", "status", "show", "logs", "retry", "remove",
            "results", "diff", "rerun", "submit", "search", "scheduler", "slurm", "demo"]
ALIASES = {"readyConfigs": "ready"}
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # the machine's state, not a bug: no traceback


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"orchestration.cli.cmd_{name}")


def _help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` shows it: without reST's double backquotes."""
    return re.sub(r"``([^`]*)``", r"\1", doc or "")


def common_options() -> argparse.ArgumentParser:
    """Options every command and subcommand takes (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $JOB_ORCHESTRATION_WORKSPACE)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="job-orchestration", parents=[common],
        description="Run many experiment configs through Luigi: ready, run, compare, rerun.")
    parser.add_argument("--version", action="version",
                        version=f"job-orchestration {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _module(name)
        aliases = [a for a, target in ALIASES.items() if target == name]
        cmd = sub.add_parser(name, parents=[common], aliases=aliases, help=module.HELP,
                             description=_help_text(module.__doc__),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if legacy.has_action(argv):  # job-orchestration 0.0.7's `-action NAME`
        return legacy.run(argv, main)
    reporter = Reporter()
    args = build_parser().parse_args(argv)
    args.workspace = getattr(args, "workspace", None)
    args.debug = getattr(args, "debug", False)
    if args.workspace:  # the code we run (tasks reading job_orchestration.Constants) sees it
        os.environ[ENV_VAR] = str(Workspace(args.workspace).root)
    command = ALIASES.get(args.command, args.command)
    try:
        if args.command is None:
            return _module("init").run_bare(args, reporter)
        return _module(command).run(args, reporter)
    except OrchestrationError as exc:
        if args.debug:
            traceback.print_exc()
        reporter.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        reporter.error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise
        if args.debug:
            traceback.print_exc()
        reporter.error(f"{exc}: free some space, then run the command again")
        return 2


if __name__ == "__main__":
    sys.exit(main())
