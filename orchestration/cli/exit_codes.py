"""The exit codes every command shares (the contract's table), so a script can tell "did
nothing" from "worked" and from "failed"."""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    EXPERIMENT_FAILED = 1  # `worker`, `demo`
    USAGE = 2  # a usage error, or a config rejected (the others are still processed)
    # `ready` found no config, `retry --failed` no failed experiment, `submit` only duplicates
    NOTHING_TO_DO = 3
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
