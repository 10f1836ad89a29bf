"""A word when an experiment ends: ``worker --notify CMD`` and ``notify:`` in a config run
the user's command once per completed or failed experiment, with what happened in its
environment; a notifier that fails or hangs is logged, killed after ``--notify-timeout``,
and changes nothing about the experiments nor delays the next one."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from orchestration.fsutil import pid_alive
from tests.conftest import state_of
from tests.e2e.test_execution import queue, show, steps, work

NOTIFIER = """\
import json, os, sys, time
seen = {k: v for k, v in os.environ.items() if k.startswith("ORCH_")}
with open(sys.argv[1], "a") as fh:
    fh.write(json.dumps({**seen, "at": time.time(), "pid": os.getpid()}) + "\\n")
if sys.argv[2] == "fail":
    sys.exit("the notifier broke")
if sys.argv[2] == "hang":
    time.sleep(60)
"""
TIMEOUT = 3.0


def notifier(tmp_path: Path, calls: Path, mode: str) -> list[str]:
    script = tmp_path / "notifier.py"
    script.write_text(NOTIFIER)
    return [sys.executable, str(script), str(calls), mode]


def calls_of(path: Path) -> dict[str, dict]:
    """The notifier's calls by experiment name (asserting one call per experiment)."""
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    names = [c["ORCH_NAME"] for c in calls]
    assert len(names) == len(set(names)), f"called more than once: {names}"
    return {c["ORCH_NAME"]: c for c in calls}


@pytest.mark.parametrize("mode", ["ok", "fail", "hang"])
def test_the_notifier_runs_once_per_ended_experiment_whatever_it_does(ws, tasks_dir, ledger,
                                                                      tmp_path, mode):
    calls = tmp_path / "calls.jsonl"
    queue(ws, tasks_dir, ledger, {"a-good": steps("Ledger", "Ledger"),
                                  "b-bad": steps("Ledger", "Fail"),
                                  "c-good": steps("Ledger")})
    result = work(ws, "--notify", shlex.join(notifier(tmp_path, calls, mode)),
                  "--notify-timeout", str(TIMEOUT))
    assert result.returncode == 1, result.stdout + result.stderr  # b-bad, not the notifier
    assert [state_of(ws, n) for n in ("a-good", "b-bad", "c-good")] == [
        "ConfigsCompleted", "ConfigsFailed", "ConfigsCompleted"]

    seen = calls_of(calls)
    assert sorted(seen) == ["a-good", "b-bad", "c-good"]
    good, bad = seen["a-good"], seen["b-bad"]
    assert (good["ORCH_STATE"], good["ORCH_CAUSE"]) == ("completed", "")
    assert (bad["ORCH_STATE"], bad["ORCH_CAUSE"]) == ("failed", "exception")
    assert good["ORCH_OUTPUT_DIR"] == str(ws / "Output" / "a-good")
    assert json.loads(good["ORCH_RESULTS_JSON"]) == {
        "s0": {"value": 1, "task": "s0"}, "s1": {"value": 1, "task": "s1"}}
    assert json.loads(bad["ORCH_RESULTS_JSON"]) == {"s0": {"value": 1, "task": "s0"}}

    out = result.stdout
    if mode == "fail":
        assert out.count("notifier exited with 1: the notifier broke") == 3, out
    if mode == "hang":
        assert out.count(f"notifier killed after {TIMEOUT:g} s") == 3, out
        assert not any(pid_alive(c["pid"]) for c in seen.values())
        # never waited for: each next experiment started while the last notifier still ran
        for before, after in (("a-good", "b-bad"), ("b-bad", "c-good")):
            assert show(ws, after)["started"] < seen[before]["at"] + TIMEOUT
    else:
        assert "notifier killed" not in out


def test_notify_in_a_config_wins_for_its_experiment(ws, tasks_dir, ledger, tmp_path):
    """``notify:`` is a fixed argv (no shell); it replaces the worker's ``--notify`` for its
    own experiment, and works without one."""
    own, workers = tmp_path / "own.jsonl", tmp_path / "worker.jsonl"
    queue(ws, tasks_dir, ledger, {"mine": steps("Ledger")},
          notify=notifier(tmp_path, own, "ok"))
    queue(ws, tasks_dir, ledger, {"theirs": steps("Ledger")})
    result = work(ws, "--notify", shlex.join(notifier(tmp_path, workers, "ok")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(calls_of(own)) == ["mine"] and sorted(calls_of(workers)) == ["theirs"]

    queue(ws, tasks_dir, ledger, {"alone": steps("Fail")}, notify=notifier(tmp_path, own, "ok"))
    assert work(ws).returncode == 1  # no --notify
    assert calls_of(own)["alone"]["ORCH_CAUSE"] == "exception"
