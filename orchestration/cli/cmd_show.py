"""One experiment: state, code state, each step's state, time, attempts and result, the log
paths; for a failed one, why, and the last lines of the failed step's log.

example: job-orchestration show sweep-lr0.1-seed1"""
from __future__ import annotations

import argparse
import json
from collections import deque
from pathlib import Path

from ..reporter import Reporter, duration
from ..workspace import Workspace

HELP = "show one experiment"
TAIL_LINES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="experiment name (the config file's stem)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.summary import show

    info = show(Workspace.from_setting(args.workspace), args.name)
    if args.json:
        reporter.json(info)
        return 0
    reporter.line(f"{info['name']}: {info['state']}")
    reporter.line(f"  config:  {info['config_file']}")
    reporter.line(f"  output:  {info['output_dir'] or '-'}")
    if info.get("provenance"):
        reporter.line(f"  commit:  {info['commit']}")
        reporter.line(f"  branch:  {info.get('branch') or '(detached HEAD)'}")
        reporter.line("  dirty:   " + ("yes (uncommitted changes recorded as a patch)"
                                       if info["dirty"] else "no"))
    elif info["output_dir"]:
        reporter.line("  commit:  no provenance (the code state was not recorded)")
    if "run_commit" in info:
        dirty = " (dirty)" if info["run_dirty"] else ""
        reporter.line(f"  at run:  {info['run_commit'] or 'no provenance'}{dirty} (the code "
                      "changed after ready; the run used this)")
    for warning in info.get("warnings", []):
        reporter.line(f"  note:    {warning}")
    failure = info.get("failure")
    if failure:
        reporter.line(f"  failed:  {failure['step']}: {failure['cause']}: {failure['detail']}"
                      f" (attempt {failure['attempts']})", style="red")
    elif info.get("error"):
        reporter.line(f"  error:   {info['error']}")
    if info["tasks"]:
        gpus = any(t.get("gpus") for t in info["tasks"])
        reporter.table(["task", "method", "state", "time", "attempts", *(["gpu"] if gpus
                                                                        else []), "result"],
                       [(t["id"], t["method"], t["state"], duration(t["seconds"]),
                         t["attempts"], *([",".join(t.get("gpus") or [])] if gpus else []),
                         _result(t)) for t in info["tasks"]])
        reporter.line("logs:")  # below the table, so long paths are never cut
        for t in info["tasks"]:
            reporter.line(f"  {t['id']}: {t['log']}")
    if failure and failure.get("step"):
        _tail(reporter, next(t for t in info["tasks"] if t["id"] == failure["step"])["log"])
    return 0


def _tail(reporter: Reporter, log: str) -> None:
    """The last lines of the failed step's log: usually the traceback that says why."""
    try:
        with open(log, "rb") as fh:
            lines = deque(fh, maxlen=TAIL_LINES)
    except OSError:
        return
    reporter.line(f"last {len(lines)} lines of {Path(log).name}:")
    for line in lines:
        reporter.line("  " + line.decode(errors="replace").rstrip("\n"))


def _result(task: dict) -> str | None:
    if task["result"] is None:
        return task.get("error")
    return task["result"] if isinstance(task["result"], str) else json.dumps(task["result"])
