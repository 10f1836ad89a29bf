"""The sbatch script of ``slurm submit``: an array of N tasks, each running one worker.

Every value a user typed ends up in an ``#SBATCH`` line (which sbatch parses with its own
quoting rules) or in the script's one command line (parsed by bash), never in a shell string
built by hand: typed options are checked against what Slurm accepts for them, every
``#SBATCH`` value is quoted the way sbatch unquotes it, and the command line is quoted with
``shlex.quote``. Nothing with a line break gets through: it could start a line of its own.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from . import SlurmError

SCRIPT_NAME = "job.sbatch"
LOG_FOLDER = "Misc/slurm/%A"  # in the workspace; %A: the job id
WARN_SECONDS = 120   # the time-limit warning comes this long before the end
WARN_SIGNAL = "USR1"  # not TERM: a task must tell "time is up" from scancel's TERM

# option: (pattern its value must match, what a good value looks like)
_NAME = (r"[A-Za-z0-9_.+@-]+(,[A-Za-z0-9_.+@-]+)*", "a Slurm name such as gpu or my_lab")
_CHECKS = {
    "partition": _NAME,
    "account": _NAME,
    "gpus_per_worker": (r"([A-Za-z0-9_.-]+:)?[1-9][0-9]*", "a count such as 1, or TYPE:COUNT "
                                                           "such as a100:2"),
    "mem": (r"[1-9][0-9]*[KMGT]?", "a size such as 16G or 4000M"),
    "time": (r"(UNLIMITED|INFINITE|[0-9]+(-[0-9]+)?(:[0-9]{1,2}){0,2})",
             "minutes, HH:MM:SS or D-HH:MM:SS, e.g. 2-00:00:00"),
}
# sbatch options this script sets itself: another value would break the workers' layout
_OWN_OPTIONS = {
    "--array": "--workers", "--output": "the logs folder", "--error": "the logs folder",
    "--chdir": "the workspace", "--open-mode": "the logs", "--signal": "the time-limit warning",
    "--requeue": "--requeue", "--no-requeue": "--requeue", "--partition": "--partition",
    "--account": "--account", "--gres": "--gpus-per-worker", "--cpus-per-task":
    "--cpus-per-worker", "--mem": "--mem", "--time": "--time", "--wrap": "the script",
    "--hold": "slurm submit", "--parsable": "slurm submit",
}
_PLAIN = re.compile(r"[A-Za-z0-9_.,:@%/+=-]+")
_LONG_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", re.DOTALL)


@dataclass
class SlurmRequest:
    """What ``slurm submit`` asks Slurm for; ``check()`` refuses what cannot be written
    into a script safely or what Slurm would reject."""

    workers: int
    partition: str | None = None
    gpus_per_worker: str | None = None
    cpus_per_worker: int | None = None
    mem: str | None = None
    time: str | None = None
    account: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    scheduler_url: str | None = None
    requeue: bool = False

    def check(self) -> None:
        problems = []
        if self.workers < 1:
            problems.append(f"--workers {self.workers}: give at least 1")
        if self.cpus_per_worker is not None and self.cpus_per_worker < 1:
            problems.append(f"--cpus-per-worker {self.cpus_per_worker}: give at least 1")
        for name, (pattern, example) in _CHECKS.items():
            value = getattr(self, name)
            if value is not None and not re.fullmatch(pattern, value):
                problems.append(f"--{name.replace('_', '-')} {value!r}: expected {example}")
        for arg in self.sbatch_args:
            problems += _sbatch_arg_problems(arg)
        url = self.scheduler_url
        if url is not None and not re.fullmatch(r"https?://[^\s\"'\\]+", url):
            problems.append(f"--scheduler-url {url!r}: expected a URL such as "
                            "http://schedhost:8082, without spaces or quotes")
        if problems:
            raise SlurmError("cannot submit:\n" + "\n".join(f"  - {p}" for p in problems))

    def options(self) -> list[tuple[str, str | None]]:
        """The user's own sbatch options, as (option, value or None)."""
        pairs = [("--partition", self.partition), ("--account", self.account),
                 ("--gres", f"gpu:{self.gpus_per_worker}" if self.gpus_per_worker else None),
                 ("--cpus-per-task", str(self.cpus_per_worker) if self.cpus_per_worker
                  else None),
                 ("--mem", self.mem), ("--time", self.time)]
        out: list[tuple[str, str | None]] = [(k, v) for k, v in pairs if v is not None]
        for arg in self.sbatch_args:
            name, eq, value = arg.partition("=")
            out.append((name, value if eq else None))
        return out


def _sbatch_arg_problems(arg: str) -> list[str]:
    if not _LONG_OPTION.fullmatch(arg):
        return [f"--sbatch-arg {arg!r}: write the sbatch option in its long form, e.g. "
                "--sbatch-arg=--qos=high"]
    if _unsafe(arg):
        return [f"--sbatch-arg {arg!r}: line breaks and control characters are not allowed"]
    name = arg.split("=", 1)[0]
    if name in _OWN_OPTIONS:
        return [f"--sbatch-arg {arg!r}: `slurm submit` sets {name} itself (use "
                f"{_OWN_OPTIONS[name]})"]
    return []


def _unsafe(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def sbatch_quote(value: str) -> str:
    """``value`` as sbatch reads it back from an ``#SBATCH`` line: as it is when plain,
    else in double quotes with a backslash before ``\\``, ``"`` and ``#`` (an unescaped
    ``#`` starts a comment there)."""
    if _PLAIN.fullmatch(value):
        return value
    return '"' + re.sub(r'(["\\#])', r"\\\1", value) + '"'


def _directive(option: str, value: str | None) -> str:
    return f"#SBATCH {option}" + ("" if value is None else f"={sbatch_quote(value)}")


def worker_command(workspace: Path, python: str, request: SlurmRequest) -> list[str]:
    """The worker each array task runs (``$CUDA_VISIBLE_DEVICES`` is left for bash)."""
    command = [python, "-m", "orchestration", "worker", "--exit-when-empty",
               "--workspace", str(workspace)]
    if request.scheduler_url:
        command += ["--scheduler-url", request.scheduler_url]
    return command


def render(workspace: Path, python: str, request: SlurmRequest) -> str:
    """The whole script. ``python`` is the interpreter of this install; workers on every
    node must find it, and the workspace, at the same paths."""
    request.check()
    for what, path in (("workspace", str(workspace)), ("python", python)):
        if _unsafe(path):
            raise SlurmError(f"cannot submit: the {what} path {path!r} holds a line break or "
                             "control character, which cannot go into an sbatch script")
    name = f"jo-{workspace.name}"
    logs = str(workspace).replace("%", "%%") + "/" + LOG_FOLDER
    directives = [
        ("--job-name", name), ("--array", f"0-{request.workers - 1}"),
        ("--chdir", str(workspace)),
        # Slurm expands %-patterns in the whole path (the working directory included when
        # the path is relative), so a literal % of the workspace's path is written %%
        ("--output", f"{logs}/out-%a.txt"), ("--error", f"{logs}/err-%a.txt"),
        ("--open-mode", "append"),  # a requeued task adds to its logs
        ("--signal", f"B:{WARN_SIGNAL}@{WARN_SECONDS}"),
        ("--requeue" if request.requeue else "--no-requeue", None),
        *request.options(),
    ]
    wrapper = [python, "-m", "orchestration.slurm.task"] + (["--requeue"] if request.requeue
                                                            else [])
    command = (" ".join(shlex.quote(a) for a in [*wrapper, "--"]) + " \\\n    "
               + " ".join(shlex.quote(a) for a in worker_command(workspace, python, request)))
    if request.gpus_per_worker:
        command += ' --gpus "$CUDA_VISIBLE_DEVICES"'  # the devices Slurm gave this task
    then = "the task requeues itself" if request.requeue else "the task ends"
    return "\n".join([
        "#!/bin/bash",
        "# Written by `job-orchestration slurm submit`. Each array task runs one worker on the",
        "# shared workspace until the queue is empty; its output is in out-<task>.txt and",
        "# err-<task>.txt beside this script. Before the time limit Slurm sends the task",
        f"# SIG{WARN_SIGNAL}: the worker puts its unfinished experiments back in the queue and",
        f"# {then}.",
        *(_directive(option, value) for option, value in directives),
        f"exec {command}",
        "",
    ])
