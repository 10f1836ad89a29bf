"""Write one config per point of a sweep into ConfigSources (names <stem>-<key><value>...
over the swept keys), skipping points identical to an experiment already in the workspace.
Overrides use Hydra's grammar: values typed as in Hydra (0.1 a float, abc a string), a sweep
axis is a,b,c, choice(a,b) or range(start, stop[, step]); +key=value adds a key the base
config lacks; tasks.<id>.<key> sets a key of one task. Example:

  job-orchestration submit base.yaml --sweep lr=0.01,0.1 --sweep 'seed=range(1,4)' --ready"""
from __future__ import annotations

import argparse

from ..reporter import Reporter
from .cmd_ready import LIST_UP_TO, progress_bar, report_outcomes
from .exit_codes import ExitCode

HELP = "write configs for a sweep into ConfigSources, skipping duplicates"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", metavar="CONFIG", help="the base config (YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key, e.g. optimizer.lr=0.1 or tasks.train.timeout=60 "
                             "(repeatable; one value: a,b is a sweep, give it to --sweep)")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="sweep a key over values; several --sweep make a grid")
    naming = parser.add_mutually_exclusive_group()
    naming.add_argument("--name-keys", metavar="K1,K2,...",
                        help="only these keys (label or dotted key) in the names, in this "
                             "order; may name --set keys too")
    naming.add_argument("--name", metavar="TEMPLATE",
                        help="name each point by a template, e.g. 'sweep-{lr}-{seed:03d}'")
    parser.add_argument("--ready", action="store_true", help="also ready the configs written")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be written; write nothing")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help=f"one line per point (and per config readied) also when there "
                             f"are more than {LIST_UP_TO}")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    from ..submission import submit

    with progress_bar(reporter, enabled=True) as bar:
        result = submit(args.config, overrides=args.set, sweep=args.sweep, ready=args.ready,
                        workspace=args.workspace, dry_run=args.dry_run,
                        name_keys=args.name_keys, name=args.name, progress=bar)
    listed = args.verbose or args.dry_run or len(result.points) <= LIST_UP_TO
    for point in result.points if listed else ():
        label = f"; {point.label}" if point.label else ""
        if point.duplicate_of is not None:
            state = point.duplicate_state
            reporter.line(f"{point.name}: skipped, identical to {point.duplicate_of} "
                          f"({state.value}, in {state.folder}/){label}")
        else:
            renamed = " (readable name taken or too long: hash added)" if point.renamed else ""
            reporter.line(f"{point.name}: {'would write' if args.dry_run else 'written'}"
                          f"{renamed}{label}")
    reporter.line(f"{len(result)} {'to write' if args.dry_run else 'written'}, "
                  f"{len(result.skipped)} skipped as duplicates"
                  + (" (dry run: nothing written)" if args.dry_run else ""))
    if args.dry_run:
        return ExitCode.OK
    if not len(result):  # every point is there already: nothing done, and a script must see it
        return ExitCode.NOTHING_TO_DO
    if args.ready:
        return report_outcomes(result.outcomes, reporter, args.verbose)
    return ExitCode.OK
