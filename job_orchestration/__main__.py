"""``python -m job_orchestration [-action NAME]``: 0.0.7's command line on this package.

With ``-action`` it runs the command that replaces that action (see ``orchestration.cli.legacy``).
Without one it creates the workspace folders; on a terminal it first asks which action to
run, with 0.0.7's numbered prompt (Enter: only create the folders).
"""
from __future__ import annotations

import sys

from orchestration.cli import legacy
from orchestration.cli.main import main


def ask() -> str:
    """0.0.7's prompt: an action's number or name; empty (or end of input) for none."""
    print("Which action would you like to perform?")
    names = list(legacy.ACTIONS)
    for i, name in enumerate(names):
        print(f"    {i}: {name}")
    try:
        answer = input().strip()
    except EOFError:
        return ""
    return names[int(answer)] if answer.isdigit() and int(answer) < len(names) else answer


def run(argv: list[str]) -> int:
    asks_help = "-h" in argv or "--help" in argv
    if not legacy.has_action(argv) and not asks_help and sys.stdin.isatty():
        argv = [legacy.FLAG, ask(), *argv]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
