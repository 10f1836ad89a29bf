"""Every experiment: state, steps done/total, elapsed time."""
from __future__ import annotations

import argparse
import time
from collections import Counter

from ..reporter import Reporter, duration
from ..workspace import Workspace

HELP = "list experiments and their progress"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..records.summary import all_experiments

    ws = Workspace.from_setting(args.workspace)
    rows = all_experiments(ws)
    totals = Counter(r["state"] for r in rows)
    if args.json:
        reporter.json({"experiments": rows, "totals": dict(totals), "eta_seconds": None})
        return 0
    now = time.time()
    reporter.table(["experiment", "state", "steps", "elapsed"], [
        (r["name"], r["state"], f"{sum(t['state'] == 'done' for t in r['tasks'])}/"
         f"{len(r['tasks'])}" if r["tasks"] else "-",
         duration(((r.get("ended") or now) - r["started"]) if r.get("started") else None))
        for r in rows])
    reporter.line(", ".join(f"{n} {s}" for s, n in sorted(totals.items())) or "no experiments")
    return 0
