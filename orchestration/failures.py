"""Why an attempt failed: one small enum of causes and the record of one failure.

Each step runs in a process we fork and wait on, so we know how it ended (an exception and
where, an exit code, a signal and the peak memory, a timeout) instead of guessing from a log.
The cause decides what happens next: infrastructure causes (the worker stopped, or died and
another took over) put the experiment back in the queue without using up the user's retries;
the others are the step's own failures, retried as its task's ``retries``/``retry_on`` say.
"""
from __future__ import annotations

import enum
import signal
from dataclasses import asdict, dataclass, field
from typing import Any


class FailureCause(str, enum.Enum):
    EXCEPTION = "exception"            # run() raised: type, message, last user frame
    EXIT = "exit"                      # sys.exit(n) / os._exit(n) before run() returned
    SIGNAL = "signal"                  # killed by a signal (SIGKILL, SIGSEGV...)
    OOM = "oom"                        # killed by the kernel's out-of-memory killer
    TIMEOUT = "timeout"                # passed its task's timeout
    STALLED = "stalled"                # reported progress, then none for stall_after seconds
    INTERRUPTED = "interrupted"        # the worker was stopped or preempted
    LOST = "lost"                      # the worker died; another worker took the claim
    INVALID_RESULT = "invalid-result"  # run() returned, but its value could not be kept
    MARKER_WRITE = "marker-write"      # run() returned, but its marker could not be written

    def __str__(self) -> str:
        return self.value

    @property
    def infrastructure(self) -> bool:
        """Not the step's fault: never uses up its retries, always runs again."""
        return self in (FailureCause.INTERRUPTED, FailureCause.LOST)


USER_CAUSES = tuple(c for c in FailureCause if not c.infrastructure)


@dataclass
class Failure:
    """How one attempt failed, as the run record keeps it and every view shows it."""

    cause: FailureCause
    detail: str                       # one line a person reads: "MemoryError at model.py:42"
    attempt: int = 0
    seconds: float | None = None
    ended: float | None = None
    counted: bool = True              # used up one of the task's retries
    facts: dict[str, Any] = field(default_factory=dict)  # exit_code, signal, peak_rss...

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cause"] = self.cause.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Failure":
        known = {k: data[k] for k in ("detail", "attempt", "seconds", "ended", "counted",
                                      "facts") if k in data}
        return cls(cause=FailureCause(data["cause"]), **known)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def human_bytes(count: float) -> str:
    """``23.1 GB``: memory as people read it."""
    if count < 1024:
        return f"{int(count)} B"
    for unit in ("KB", "MB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} GB"
