"""One experiment: state, code state, per-step state and durations, log paths."""
from __future__ import annotations

import argparse

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
        reporter.line(f"  commit:  {info['commit']}{' (dirty: patch recorded)' if info['dirty'] else ''}"
                      f"{' on ' + info['branch'] if info.get('branch') else ''}")
    elif info["output_dir"]:
        reporter.line("  commit:  no provenance (Tasks.py is not in a git repository)")
    for warning in info.get("warnings", []):
        reporter.warn(warning)
    if info.get("error"):
        reporter.line(f"  error:   {info['error']}")
    if info["tasks"]:
        reporter.table(["task", "method", "state", "time", "result", "log"],
                       [(t["id"], t["method"], t["state"], duration(t["seconds"]),
                         t["result"] if t["result"] is not None else t.get("error"), t["log"])
                        for t in info["tasks"]])
    return 0
