"""What each array task of ``slurm submit`` runs: the worker, with Slurm's signals passed on.

``python -m orchestration.slurm.task [--requeue] -- WORKER COMMAND...`` starts the worker and
stops it (SIGTERM: it puts its unfinished experiments back in the queue and exits) on:

- SIGTERM or SIGINT: ``scancel``, preemption, the end of the time limit. Slurm sends SIGTERM
  to every process of the task, the worker included; passing it on is for the cases where
  only this process gets it. Slurm itself requeues a preempted ``--requeue`` job.
- SIGUSR1: the warning Slurm sends this process (``--signal=B:USR1@120``) before the time
  limit. With ``--requeue`` the task then requeues itself (``scontrol requeue``): Slurm
  requeues for preemption and node failure, never for a time limit. A distinct signal is
  what tells "time is up, come back later" from a user's ``scancel``, which must not.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
TIME_UP = signal.SIGUSR1
CLEAN_EXITS = (0, 1)  # the worker stopped as asked (1: some experiment failed before)


class _Task:
    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.stopping = False
        self.time_up = False

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        self.time_up = self.time_up or signum == TIME_UP
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        for sig in (*STOP_SIGNALS, TIME_UP):
            signal.signal(sig, self.stop)  # before the start: no signal may kill us alone
        self.proc = subprocess.Popen(self.command)
        if self.stopping:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait()
        return code if code >= 0 else 128 - code  # killed by a signal: as a shell says it


def requeue_target() -> str:
    """This array task as Slurm names it, e.g. ``123_4``."""
    return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.slurm.task",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--requeue", action="store_true",
                        help="requeue this task when the time-limit warning comes")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- WORKER COMMAND...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no worker command given after --")
    task = _Task(command)
    code = task.run()
    print(f"worker exited with status {code}" + (" after the time-limit warning"
                                                 if task.time_up else ""), flush=True)
    if task.time_up and args.requeue and code in CLEAN_EXITS:
        target = requeue_target()
        print(f"requeueing {target}: it runs again when Slurm starts it", flush=True)
        # The last thing this task does: Slurm ends the running task as it requeues it.
        subprocess.run(["scontrol", "requeue", target], check=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
