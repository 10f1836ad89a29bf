"""The Slurm jobs of a workspace: submit one, ask ``squeue`` about all of them in one call,
cancel them.

A job's folder ``Misc/slurm/<job id>/`` holds its script and its tasks' logs; the folders
are the list of our jobs. A job ``squeue`` no longer knows has ended: its folder gets a
``finished`` mark so later calls leave it out. Every Slurm command gets a fixed argument
list and a timeout, so a slow or absent controller costs one clear line, not a hang.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..workspace import Workspace
from . import SlurmError
from .script import SCRIPT_NAME, SlurmRequest, render

COMMAND_TIMEOUT = 30.0
SQUEUE_TIMEOUT = 15.0  # status waits no longer; squeue gives up on a down controller in ~9 s
FINISHED_MARK = "finished"
SQUEUE_FORMAT = "%F|%K|%T|%r"  # array job id, task id, state, reason
# states of a task that will not run (again) by itself; "completing" is on its way there
ENDED = {"completed", "cancelled", "failed", "timeout", "out_of_memory", "node_fail",
         "boot_fail", "deadline", "preempted", "revoked", "special_exit", "completing"}
BROKEN = {"failed", "timeout", "out_of_memory", "node_fail", "boot_fail", "deadline"}
SHOWN_FIRST = {"running": 0, "pending": 1, "held": 2}  # then the others, by name


def jobs_folder(ws: Workspace) -> Path:
    return ws.misc / "slurm"


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} not found: Slurm's commands are not on PATH here (run "
                         "this on a login node of the cluster)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {timeout:g} s: is the Slurm "
                         "controller up?") from None


def _failed(argv: list[str], result: subprocess.CompletedProcess) -> SlurmError:
    said = (result.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
    return SlurmError(f"{argv[0]} failed (exit status {result.returncode}): {said}")


def _output(argv: list[str]) -> str:
    result = _run(argv)
    if result.returncode != 0:
        raise _failed(argv, result)
    return result.stdout


@dataclass
class Submitted:
    job: str
    folder: Path


def submit(ws: Workspace, request: SlurmRequest, python: str = sys.executable) -> Submitted:
    """Write the script, submit it, give its folder the job id; nothing stays running.

    The job is submitted held and released once its folder has its final name: Slurm does
    not create log folders, so a task starting before the rename could not open its logs.
    A crash in between leaves a held job (``squeue`` shows it, nothing runs) beside a
    ``.submitting-*`` folder; a failed ``sbatch`` leaves nothing."""
    text = render(ws.root, python, request)
    root = jobs_folder(ws)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".submitting-", dir=root))
    try:
        (staging / SCRIPT_NAME).write_text(text)
        out = _output(["sbatch", "--parsable", "--hold", str(staging / SCRIPT_NAME)])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    job = out.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {out.strip()!r}, not a job id; its script is in "
                         f"{staging}")
    folder = _settle(staging, root / job)
    try:
        _output(["scontrol", "release", job])
    except SlurmError as exc:
        raise SlurmError(f"job {job} is submitted but held ({exc}); release it with "
                         f"`scontrol release {job}` or cancel it with `job-orchestration "
                         f"slurm cancel {job}`") from None
    return Submitted(job, folder)


def _settle(staging: Path, dest: Path) -> Path:
    """Rename the staging folder to the job id; a folder already there is from another
    job of the same id (a reinstalled cluster counts from 1 again) and is moved aside."""
    try:
        os.rename(staging, dest)
    except OSError:
        os.rename(dest, dest.with_name(f"{dest.name}.replaced-{time.time():.0f}"))
        os.rename(staging, dest)
    return dest


@dataclass
class Job:
    job: str
    folder: Path
    tasks: Counter[str] = field(default_factory=Counter)  # state -> number of array tasks
    finished: bool = False  # squeue no longer knows it

    @property
    def live(self) -> bool:
        return not self.finished and any(state not in ENDED for state in self.tasks)

    def line(self, root: Path) -> str:
        states = sorted(self.tasks, key=lambda s: (SHOWN_FIRST.get(s, len(SHOWN_FIRST)), s))
        counts = ", ".join(f"{self.tasks[s]} {s}" for s in states) or "state unknown"
        if BROKEN.intersection(self.tasks):
            counts += f" (see {self.folder.relative_to(root)}/err-*.txt)"
        if "held" in self.tasks:
            counts += f" (`scontrol release {self.job}` lets it start)"
        return f"slurm: job {self.job}: {counts}"

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "folder": str(self.folder), "tasks": dict(self.tasks),
                "finished": self.finished}


@dataclass
class SlurmSummary:
    """Our jobs as one ``squeue`` call saw them; ``error`` says why it could not."""

    root: Path  # the workspace's: lines name the log folders from there
    jobs: list[Job]
    error: str | None = None

    def lines(self) -> list[str]:
        """One line per job not known to be finished (none when nothing was submitted)."""
        shown = [job for job in self.jobs if not job.finished]
        if self.error:
            return [f"slurm: cannot list jobs {', '.join(j.job for j in shown)}: {self.error}"]
        return [job.line(self.root) for job in shown]

    def as_json(self) -> dict[str, Any]:
        return {"jobs": [job.as_json() for job in self.jobs], "error": self.error}


def recorded(ws: Workspace) -> list[Job]:
    """Every job submitted from this workspace, oldest first, from its folders."""
    try:
        names = [e.name for e in os.scandir(jobs_folder(ws)) if e.name.isdigit() and e.is_dir()]
    except FileNotFoundError:
        return []
    folders = [jobs_folder(ws) / name for name in sorted(names, key=int)]
    return [Job(f.name, f, finished=(f / FINISHED_MARK).exists()) for f in folders]


def summary(ws: Workspace) -> SlurmSummary:
    """Our jobs and their tasks' states: one ``squeue`` call for all of them, none when
    every job is known to be finished. Never raises for Slurm's sake: ``status`` must work
    where squeue is missing or the controller is down."""
    jobs = recorded(ws)
    asked = [job for job in jobs if not job.finished]
    result = SlurmSummary(ws.root, jobs)
    if not asked:
        return result
    try:
        states = _squeue([job.job for job in asked])
    except SlurmError as exc:
        result.error = str(exc)
        return result
    for job in asked:
        if job.job in states:
            job.tasks = states[job.job]
        else:
            job.finished = True
            try:
                (job.folder / FINISHED_MARK).touch()
            except OSError:
                pass  # a reader without write access asks again next time
    return result


def _squeue(ids: list[str]) -> dict[str, Counter[str]]:
    """State counts per job id; jobs squeue has forgotten are absent."""
    argv = ["squeue", "--noheader", "--array", "--states=all", f"--format={SQUEUE_FORMAT}",
            f"--jobs={','.join(ids)}"]
    result = _run(argv, SQUEUE_TIMEOUT)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return {}  # asked about one job only, and Slurm has forgotten it
        raise _failed(argv, result)
    states: dict[str, Counter[str]] = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4:
            continue
        job, _task, state, reason = parts
        state = state.lower()
        if state == "pending" and reason.startswith("JobHeld"):
            state = "held"
        states.setdefault(job, Counter())[state] += 1
    return states


def cancel(ws: Workspace, job: str | None = None) -> list[Job]:
    """``scancel`` one job (or one array task, ``123_4``) of ours, or every live one. A
    cancelled worker gets SIGTERM and puts its experiments back in the queue."""
    if job is not None:
        if not re.fullmatch(r"[0-9]+(_[0-9]+)?", job):
            raise SlurmError(f"{job!r} is not a job id: give one such as 123, or one array "
                             "task such as 123_4")
        base = job.split("_")[0]
        found = [j for j in recorded(ws) if j.job == base]
        if not found:
            raise SlurmError(f"job {base} was not submitted from this workspace (its jobs "
                             f"are the folders in {jobs_folder(ws)})")
        targets = [Job(job, found[0].folder)]
    else:
        known = summary(ws)
        if known.error:
            raise SlurmError(known.error)
        targets = [j for j in known.jobs if j.live]
        if not targets:
            raise SlurmError("no Slurm job of this workspace is pending or running: nothing "
                             "to cancel")
    _output(["scancel", *(j.job for j in targets)])
    return targets


def status_part(ws: Workspace) -> dict[str, Any] | None:
    """The ``slurm`` object of ``status --json``: present only for a workspace that has
    Slurm jobs (no ``squeue`` call, and no key, elsewhere)."""
    if not recorded(ws):
        return None
    return summary(ws).as_json()
