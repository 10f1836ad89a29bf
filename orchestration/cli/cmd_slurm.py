"""Workers on a Slurm cluster. ``slurm submit`` submits an array job of N workers on this
workspace (it must be on a filesystem every node mounts at the same path, like the code)
and exits; ``status`` shows the job; ``slurm cancel`` cancels it, and its workers put their
experiments back in the queue. Script and logs: Misc/slurm/<job id>/.

example: job-orchestration slurm submit --workers 8 --partition gpu --gpus-per-worker 1"""
from __future__ import annotations

import argparse

from ..exceptions import UsageError
from ..reporter import Reporter
from ..states import ExperimentState
from ..workspace import Workspace

HELP = "run workers as a Slurm array job (submit, cancel)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .main import common_options

    sub = parser.add_subparsers(dest="slurm_command", metavar="SUBCOMMAND")
    submit = sub.add_parser("submit", parents=[common_options()],
                            help="submit N workers as one array job and exit",
                            description="Submit an sbatch array job of N tasks, each running "
                                        "`worker --exit-when-empty` on this workspace; print "
                                        "its id and exit.")
    submit.add_argument("--workers", type=int, required=True, metavar="N",
                        help="array tasks, each one worker running one experiment at a time")
    submit.add_argument("--partition", metavar="P", help="Slurm partition")
    submit.add_argument("--gpus-per-worker", metavar="G",
                        help="GPUs per task (--gres=gpu:G; TYPE:G for a GPU type); the worker "
                             "gets the devices Slurm gave it")
    submit.add_argument("--cpus-per-worker", type=int, metavar="C", help="CPUs per task")
    submit.add_argument("--mem", metavar="M", help="memory per task, e.g. 16G")
    submit.add_argument("--time", metavar="T", help="time limit per task, e.g. 1-00:00:00; "
                                                    "its experiments go back to the queue "
                                                    "2 minutes before it")
    submit.add_argument("--account", metavar="A", help="Slurm account to charge")
    submit.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                        help="any other sbatch option in long form, e.g. "
                             "--sbatch-arg=--qos=high (repeatable)")
    submit.add_argument("--scheduler-url", metavar="URL",
                        help="a luigid every node can reach (for `resources` limits across "
                             "workers and the web view); default: a local scheduler per task")
    submit.add_argument("--requeue", action="store_true",
                        help="a task stopped by its time limit or by preemption comes back "
                             "later and goes on with the queue")
    cancel = sub.add_parser("cancel", parents=[common_options()],
                            help="cancel this workspace's Slurm workers",
                            description="scancel a job of this workspace (or one array task, "
                                        "JOB_TASK), or all of its pending and running jobs. "
                                        "Running workers put their experiments back in the "
                                        "queue; finished steps are kept.")
    cancel.add_argument("job", nargs="?", metavar="JOB",
                        help="job id (e.g. 123) or array task (e.g. 123_4); default: all")


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    ws = Workspace.from_setting(args.workspace)
    if args.slurm_command == "submit":
        return _submit(ws, args, reporter)
    if args.slurm_command == "cancel":
        return _cancel(ws, args, reporter)
    raise UsageError("say what to do: `job-orchestration slurm submit --workers N` or "
                     "`job-orchestration slurm cancel [JOB]`")


def _submit(ws: Workspace, args: argparse.Namespace, reporter: Reporter) -> int:
    from ..slurm.jobs import submit
    from ..slurm.script import SlurmRequest

    request = SlurmRequest(
        workers=args.workers, partition=args.partition, gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker, mem=args.mem, time=args.time,
        account=args.account, sbatch_args=args.sbatch_arg, scheduler_url=args.scheduler_url,
        requeue=args.requeue)
    submitted = submit(ws, request)
    reporter.line(f"submitted Slurm job {submitted.job}: {args.workers} worker"
                  f"{'s' if args.workers != 1 else ''} on {ws.root}")
    reporter.line(f"script and logs: {submitted.folder} (out-<task>.txt, err-<task>.txt)")
    reporter.line(f"watch: `job-orchestration status`; stop: `job-orchestration slurm cancel "
                  f"{submitted.job}`")
    if not ws.config_files(ExperimentState.QUEUED):
        reporter.warn(f"nothing is queued in {ws.folder(ExperimentState.QUEUED)}: the workers "
                      "exit at once unless configs are readied before they start")
    return 0


def _cancel(ws: Workspace, args: argparse.Namespace, reporter: Reporter) -> int:
    from ..slurm.jobs import cancel

    for job in cancel(ws, args.job):
        counts = ", ".join(f"{n} {state}" for state, n in job.tasks.items())
        reporter.line(f"cancelled Slurm job {job.job}" + (f" ({counts})" if counts else ""))
    reporter.line("its running workers put their experiments back in the queue as they stop "
                  "(finished steps are kept)")
    return 0
