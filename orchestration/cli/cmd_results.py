"""One row per experiment: the config fields that differ across the rows and the values its
tasks returned, as a table, CSV or JSON, for comparing a sweep. Values in --where are typed
as in submit --set (Hydra's grammar). Example:

  job-orchestration results --where optimizer.name=adam --sort eval.accuracy --desc"""
from __future__ import annotations

import argparse

from ..reporter import Reporter

HELP = "compare experiments: varied config fields and returned values"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="only experiments whose config has this value, typed as in "
                             "submit --set (lr=0.1 and lr=1e-3 are numbers, lr='0.1' a "
                             "string); KEY is a dotted config key, name or state; repeat to "
                             "require several")
    parser.add_argument("--sort", metavar="KEY",
                        help="order rows by a config key or a returned value such as "
                             "train.loss (numbers as numbers, missing values last)")
    parser.add_argument("--desc", action="store_true", help="with --sort: largest first")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format (default: table)")
    parser.add_argument("--search", metavar="NAME",
                        help="the trials of adaptive search NAME instead: trial number, "
                             "objective and parameters, best first")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..exceptions import UsageError
    from ..records.results import parse_where, results, table, to_csv

    if args.desc and args.sort is None:
        raise UsageError("--desc orders by --sort KEY; give --sort too")
    if args.search:
        from .cmd_search import print_trials

        return print_trials(args, reporter)
    rows = results(args.workspace, parse_where(args.where), sort=args.sort, desc=args.desc)
    if args.format == "json":
        reporter.json(rows)
    elif args.format == "csv":
        reporter.raw(to_csv(rows))
    elif rows:
        reporter.table(*table(rows))
    else:
        reporter.line("no experiments" + (" match" if args.where else ""))
    return 0
