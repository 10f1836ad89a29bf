"""run_attempt in-process: however the step's code ends, the caller gets an outcome that says
what happened, and nothing the child does reaches the calling process."""
from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestration.pipeline import isolation
from orchestration.pipeline.isolation import ProgressFn, run_attempt


def _returns(progress: ProgressFn) -> Any:
    print("hello from the step")
    return {"loss": 0.25}


def _raises(progress: ProgressFn) -> Any:
    raise ValueError("boom")


def _exits_zero(progress: ProgressFn) -> Any:
    os._exit(0)


def _kills_itself(progress: ProgressFn) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def _segfaults(progress: ProgressFn) -> Any:
    ctypes.string_at(0)


def _sleeps(progress: ProgressFn) -> Any:
    time.sleep(60)


def _ignores_sigterm(progress: ProgressFn) -> Any:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)


def _unserialisable(progress: ProgressFn) -> Any:
    return {"model": object()}


def _huge(progress: ProgressFn) -> Any:
    return [f"row {i}" for i in range(200_000)]  # ~2 MB of JSON: far past a pipe's buffer


CASES = [
    # target, timeout, ok, words in the error, words in the log
    (_returns, None, True, None, "hello from the step"),
    (_raises, None, False, "ValueError: boom", "Traceback"),
    (_exits_zero, None, False, "exited with code 0 before run() returned", ""),
    (_kills_itself, None, False, "killed by SIGKILL", ""),
    (_segfaults, None, False, "killed by SIGSEGV", "Fatal Python error: Segmentation fault"),
    (_sleeps, 0.3, False, "timed out after 0.3 s", ""),
    (_ignores_sigterm, 0.3, False, "timed out after 0.3 s", ""),
    (_unserialisable, None, False, "not JSON-serialisable", ""),
]


@pytest.mark.parametrize("target, timeout, ok, error, logged", CASES,
                         ids=[c[0].__name__.strip("_") for c in CASES])
def test_outcome_says_how_the_attempt_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            target: Callable[[ProgressFn], Any],
                                            timeout: float | None, ok: bool, error: str | None,
                                            logged: str) -> None:
    monkeypatch.setattr(isolation, "TERM_GRACE_SECONDS", 0.3)  # SIGKILL soon after SIGTERM
    log = tmp_path / "step.log"
    outcome = run_attempt(target, log, timeout, lambda fraction, message: None)
    assert outcome.ok is ok
    assert outcome.seconds < 10
    if ok:
        assert outcome.result == {"loss": 0.25}
    else:
        assert error in outcome.error
    assert logged in (log.read_text() if log.exists() else "")


def test_progress_arrives_in_order_before_the_result(tmp_path: Path) -> None:
    def target(progress: ProgressFn) -> str:
        for i in range(100):
            progress(i / 100, f"step {i}")
        return "done"

    seen: list[tuple[float, str | None]] = []
    outcome = run_attempt(target, tmp_path / "step.log", None,
                          lambda fraction, message: seen.append((fraction, message)))
    assert outcome.ok and outcome.result == "done"
    assert seen == [(i / 100, f"step {i}") for i in range(100)]


def test_a_result_bigger_than_the_pipe_buffer_arrives_intact(tmp_path: Path) -> None:
    outcome = run_attempt(_huge, tmp_path / "step.log", 30, lambda fraction, message: None)
    assert outcome.ok, outcome.error
    assert outcome.result == _huge(lambda fraction, message: None)
