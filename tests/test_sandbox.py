"""run_attempt in-process: however the step's code ends, the caller gets an outcome that says
what happened (its cause), and nothing the child does reaches the calling process."""
from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from orchestration import sandbox
from orchestration.failures import FailureCause
from orchestration.sandbox import AttemptRequest, ProgressFn, run_attempt, to_json_value


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


def _sys_exit(progress: ProgressFn) -> Any:
    raise SystemExit(3)


def _stopped(progress: ProgressFn) -> Any:
    os.kill(os.getpid(), signal.SIGTERM)


def _stalls(progress: ProgressFn) -> Any:
    progress(0.1, "started")
    time.sleep(60)


E, X, S, T = (FailureCause.EXCEPTION, FailureCause.EXIT, FailureCause.SIGNAL,
              FailureCause.TIMEOUT)
CASES = [
    # target, timeout, cause (None: ok), words in the detail, words in the log
    (_returns, None, None, None, "hello from the step"),
    (_raises, None, E, "ValueError: boom at test_sandbox.py:", "Traceback"),
    (_sys_exit, None, X, "sys.exit(3)", ""),
    (_exits_zero, None, X, "exited with code 0 before run() returned", ""),
    (_kills_itself, None, S, "killed (SIGKILL)", ""),
    (_segfaults, None, S, "killed (SIGSEGV)", ""),  # its traceback: in a host (e2e tests)
    (_stopped, None, FailureCause.INTERRUPTED, "stopped by SIGTERM from outside", ""),
    (_sleeps, 0.3, T, "timed out after 0.3 s", ""),
    (_ignores_sigterm, 0.3, T, "timed out after 0.3 s", ""),
]


@pytest.mark.parametrize("target, timeout, cause, detail, logged", CASES,
                         ids=[c[0].__name__.strip("_") for c in CASES])
def test_outcome_says_how_the_attempt_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            target: Callable[[ProgressFn], Any],
                                            timeout: float | None, cause: FailureCause | None,
                                            detail: str | None, logged: str) -> None:
    monkeypatch.setattr(sandbox, "TERM_GRACE_SECONDS", 0.3)  # SIGKILL soon after SIGTERM
    log = tmp_path / "step.log"
    outcome = run_attempt(target, AttemptRequest(log=str(log), timeout=timeout),
                          lambda fraction, message: None)
    assert outcome.seconds < 10
    if cause is None:
        assert outcome.ok and outcome.result == {"loss": 0.25}
    else:
        assert outcome.failure.cause is cause and detail in outcome.failure.detail
    assert logged in (log.read_text() if log.exists() else "")


def test_a_step_that_stops_reporting_progress_is_killed_as_stalled(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "TERM_GRACE_SECONDS", 0.3)
    outcome = run_attempt(_stalls, AttemptRequest(log=str(tmp_path / "l"), stall_after=0.3,
                                                  stall_kill=True), lambda f, m: None)
    assert outcome.failure.cause is FailureCause.STALLED


def test_an_odd_return_value_is_converted_never_a_failure(tmp_path: Path) -> None:
    outcome = run_attempt(_unserialisable, AttemptRequest(log=str(tmp_path / "l")),
                          lambda f, m: None)
    assert outcome.ok and outcome.result["model"].startswith("<object object")
    assert "kept as its repr" in outcome.warnings[0]
    assert "kept as its repr" in (tmp_path / "l").read_text()


def test_progress_arrives_in_order_before_the_result(tmp_path: Path) -> None:
    def target(progress: ProgressFn) -> str:
        for i in range(100):
            progress(i / 100, f"step {i}")
        return "done"

    seen: list[tuple[float, str | None]] = []
    outcome = run_attempt(target, AttemptRequest(log=str(tmp_path / "step.log")),
                          lambda fraction, message: seen.append((fraction, message)))
    assert outcome.ok and outcome.result == "done"
    assert seen == [(i / 100, f"step {i}") for i in range(100)]


def test_a_result_bigger_than_the_pipe_buffer_arrives_intact(tmp_path: Path) -> None:
    outcome = run_attempt(_huge, AttemptRequest(log=str(tmp_path / "step.log"), timeout=30),
                          lambda fraction, message: None)
    assert outcome.ok, outcome.failure
    assert outcome.result == _huge(lambda fraction, message: None)


def test_return_values_users_give_become_json() -> None:
    import dataclasses
    import fractions
    import math

    @dataclasses.dataclass
    class Metrics:
        loss: float
        path: Path

    class Scalar:  # what numpy and torch scalars look like
        def item(self) -> float:
            return 0.93

    class Array:
        def tolist(self) -> list:
            return [[1, 2], [3, 4]]

    warnings: list[str] = []
    value = {"acc": Scalar(), "m": Array(), "t": (1, 2), "s": {3, 1, 2},
             "d": Metrics(0.5, Path("/x/y")), 1: fractions.Fraction(1, 4), "nan": math.nan,
             "p": Path("/a")}
    assert to_json_value(value, warnings) == {
        "acc": 0.93, "m": [[1, 2], [3, 4]], "t": [1, 2], "s": [1, 2, 3],
        "d": {"loss": 0.5, "path": "/x/y"}, "1": 0.25, "nan": "nan", "p": "/a"}
    assert warnings == []
