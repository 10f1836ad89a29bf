"""One experiment: state, code state, per-step state and durations, log paths."""
from __future__ import annotations

import argparse
import json

from ..reporter import Reporter, duration
from ..workspace import Workspace

HELP = "show one experiment"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="experiment name (the config file's stem)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.summary import summarize

    ws = Workspace.from_setting(args.workspace)
    state, path = ws.locate(args.name)
    info = summarize(ws, args.name, state, path)
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
        reporter.warn(warning)
    if info.get("error"):
        reporter.line(f"  error:   {info['error']}")
    if info["tasks"]:
        reporter.table(["task", "method", "state", "time", "attempts", "result"],
                       [(t["id"], t["method"], t["state"], duration(t["seconds"]),
                         t["attempts"], _result(t)) for t in info["tasks"]])
        reporter.line("logs:")  # below the table, so long paths are never cut
        for t in info["tasks"]:
            reporter.line(f"  {t['id']}: {t['log']}")
    return 0


def _result(task: dict) -> str | None:
    if task["result"] is None:
        return task.get("error")
    return task["result"] if isinstance(task["result"], str) else json.dumps(task["result"])
