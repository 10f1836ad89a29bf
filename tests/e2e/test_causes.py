"""Why did it fail? One step per cause through the real worker, and what the user sees of
it: the cause and detail in ``status --json``'s ``failure``, the ``why`` column, ``show``
with the last lines of the failed step's log. Then which causes use up ``retries``
(``retry_on``, ``retry_delay``; a stopped or dead worker never counts), and stalls."""
from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestration.cli.cmd_show import TAIL_LINES
from orchestration.workspace import Workspace
from tests.conftest import make_code_repo, run_cli, state_of, wait_until
from tests.e2e.test_execution import error_text, queue, ran, show, steps, work
from tests.e2e.test_faults import background, drive, held, started_pid

CAUSES = [
    # experiment, its middle step's method and options, the cause, words of its detail,
    # words the show tail holds (the step's own last words, before our note of the failure)
    ("raises", "Fail", {}, "exception", "ValueError: deliberate failure at Tasks.py:",
     'raise ValueError("deliberate failure")'),
    ("sys-exit", "SysExit", {}, "exit", "run() called sys.exit(3)", "SystemExit: 3"),
    ("os-exit-0", "ExitZero", {}, "exit",
     "the process exited with code 0 before run() returned (os._exit?)", "attempt 1 of 1 on"),
    ("sigkill", "SelfKill", {}, "signal", "killed (SIGKILL), peak ", "attempt 1 of 1 on"),
    ("sigsegv", "Segfault", {"lines": 30}, "signal", "killed (SIGSEGV), peak ",
     'tasks/Tasks.py", line'),  # the fault handler's stack: where the step crashed
    ("memory-hog", "MemoryHog", {}, "exception", "MemoryError at Tasks.py:",
     "hog = bytearray(256 * 2**20)"),
    ("timeout", "Sleep", {"timeout": 1, "sleep": 30}, "timeout",
     "timed out after 1 s (its limit) and was killed", "attempt 1 of 1 on"),
    ("full-disk", "Ledger", {"id": "disk"}, "marker-write",
     "run() returned but its marker could not be saved: [Errno 28] No space left on device",
     "stdout of disk"),
]


def _queue_table(ws: Path, tasks_dir: Path, ledger: Path,
                 rows: list[tuple]) -> None:
    queue(ws, tasks_dir, ledger, {name: [{"id": "s0", "method": "Ledger"},
                                         {"id": "s1", "method": method, **options},
                                         {"id": "s2", "method": "Ledger"}]
                                  for name, method, options, *_ in rows})


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Every row of CAUSES failed: the full disk through the fault driver (every marker
    called ``disk.done.json`` meets ENOSPC), the others through the installed CLI; then
    ``status`` and ``status --json`` once."""
    root = tmp_path_factory.mktemp("causes")
    tasks_dir = make_code_repo(root / "project") / "tasks"
    ws, ledger = root / "ws", root / "ledger.txt"
    Workspace(ws).init()
    _queue_table(ws, tasks_dir, ledger, [r for r in CAUSES if r[3] != "marker-write"])
    plain = work(ws)
    assert plain.returncode == 1, plain.stdout + plain.stderr
    _queue_table(ws, tasks_dir, ledger, [r for r in CAUSES if r[3] == "marker-write"])
    full = drive(ws, "enospc-writing", "disk.done.json")
    assert full.returncode == 1, full.stdout + full.stderr
    status = run_cli("status", ws=ws)
    assert status.returncode == 0, status.stderr
    rows = {e["name"]: e for e in json.loads(run_cli("status", "--json", ws=ws).stdout)[
        "experiments"]}
    return SimpleNamespace(ws=ws, ledger=ledger, status=status.stdout, rows=rows)


@pytest.mark.parametrize("name, method, options, cause, detail, tail", CAUSES,
                         ids=[row[0] for row in CAUSES])
def test_each_cause_is_named_where_the_failure_shows(failed, name, method, options, cause,
                                                     detail, tail):
    step = options.get("id", "s1")
    ws = failed.ws
    assert state_of(ws, name) == "ConfigsFailed"
    assert ran(failed.ledger, name) == ["s0", step]  # the step after it never ran
    failure = failed.rows[name]["failure"]
    assert failure == {"step": step, "cause": cause, "detail": failure["detail"], "attempts": 1}
    assert detail in failure["detail"], failure
    assert f"{step}: {failure['detail']}" in failed.status  # the why column, whole
    assert f"{cause}: {failure['detail']}" in error_text(ws, name)

    history = {t["id"]: t for t in failed.rows[name]["tasks"]}[step]["failures"]
    assert [(f["cause"], f["counted"]) for f in history] == [(cause, True)]

    shown = run_cli("show", name, ws=ws)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"failed:  {step}: {cause}: {failure['detail']} (attempt 1)" in text
    heading = re.search(r"last (\d+) lines of (\S+):\n", text)
    assert heading and heading.group(2) == f"{step}.log", text
    lines = text[heading.end():].splitlines()
    assert len(lines) == int(heading.group(1)) <= TAIL_LINES
    assert lines[-1].endswith(f"attempt 1 of 1 failed: {cause}: {failure['detail']}")
    assert any(tail in line for line in lines[:-1]), text


def test_the_show_tail_is_the_last_lines_of_a_long_log(failed):
    """The segfault's log holds more than 20 lines (30 of its own, then Python's fault
    handler's): ``show`` prints its end, where the news is."""
    log = (failed.ws / "Output" / "sigsegv" / "logs" / "s1.log").read_text().splitlines()
    assert len(log) > TAIL_LINES
    text = run_cli("show", "sigsegv", ws=failed.ws).stdout
    assert text.endswith("\n".join("  " + line for line in log[-TAIL_LINES:]) + "\n")


# --- the worker's own end: infrastructure causes ---------------------------------------------
def signal_worker_mid_step(ws: Path, tmp_path: Path, flags: dict, stop: int) -> None:
    """Start a worker, send it ``stop`` once its step wrote ``started_flag``, wait for it."""
    worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty")
    try:
        started_pid(Path(flags["started_flag"]))
        worker.send_signal(stop)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


STOPS = [
    # how the worker ends, the cause its step's attempt gets, its detail, what the next
    # worker says
    (signal.SIGTERM, "interrupted", "the worker is stopping", None),
    (signal.SIGKILL, "lost", "its worker died; another worker took the claim",
     "held: its worker died; queued again (finished steps are kept)"),
]


@pytest.mark.slow
@pytest.mark.parametrize("stop, cause, detail, said", STOPS, ids=["sigterm", "sigkill"])
def test_a_worker_stopped_or_killed_mid_step_costs_no_retry(ws, tasks_dir, ledger, tmp_path,
                                                            stop, cause, detail, said):
    """The experiment goes back to the queue (SIGTERM: at once; SIGKILL: once another worker
    sees the claim's owner dead), its attempt noted with the cause, not counted: with
    ``retries: 0`` the step still runs again, and finishes."""
    flags = held(ws, tasks_dir, ledger, tmp_path, "held")
    signal_worker_mid_step(ws, tmp_path, flags, stop)
    if stop == signal.SIGTERM:
        assert state_of(ws, "held") == "ConfigsToRun"
        assert "held: put back in the queue: the worker is stopping" in (
            tmp_path / "worker.log").read_text()
    else:
        assert state_of(ws, "held") == "ConfigsInProgress"  # until a worker looks

    Path(flags["go_flag"]).touch()
    again = work(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    if said:
        assert said in again.stdout
    assert ran(ledger, "held") == ["s0", "s1", "s1", "s2"]
    info = show(ws, "held")
    assert info["state"] == "completed" and "failure" not in info
    s1 = {t["id"]: t for t in info["tasks"]}["s1"]
    assert [(f["cause"], f["detail"], f["counted"]) for f in s1["failures"]] == [
        (cause, detail, False)]
    assert s1["attempts"] == 2


# --- which causes use up retries ------------------------------------------------------------
RETRIES = [
    # experiment, method, options, (cause, counted) of each failed attempt, final folder
    ("default-every-own-cause", "Fail", {"retries": 2},
     [("exception", True)] * 3, "ConfigsFailed"),
    ("kill-in-retry_on", "SelfKill", {"retries": 1, "retry_on": ["signal"]},
     [("signal", True)] * 2, "ConfigsFailed"),
    ("kill-not-in-retry_on", "SelfKill", {"retries": 3, "retry_on": ["exception"]},
     [("signal", False)], "ConfigsFailed"),
    ("exit-not-in-retry_on", "SysExit", {"retries": 2, "retry_on": ["exception", "timeout"]},
     [("exit", False)], "ConfigsFailed"),
    ("timeout-in-retry_on", "Sleep", {"retries": 1, "retry_on": ["timeout"], "timeout": 0.5,
                                      "sleep": 30}, [("timeout", True)] * 2, "ConfigsFailed"),
    ("flaky-passes-on-its-retry", "Flaky", {"retries": 1, "retry_on": ["exception"]},
     [("exception", True)], "ConfigsCompleted"),
    ("retry-delay", "Fail", {"retries": 1, "retry_delay": 1.5},
     [("exception", True)] * 2, "ConfigsFailed"),
]


@pytest.fixture(scope="module")
def retried(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("retries")
    tasks_dir = make_code_repo(root / "project") / "tasks"
    ws, ledger = root / "ws", root / "ledger.txt"
    Workspace(ws).init()
    queue(ws, tasks_dir, ledger, {name: steps(method, "Ledger", s0=options)
                                  for name, method, options, *_ in RETRIES})
    result = work(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    return SimpleNamespace(ws=ws, ledger=ledger)


@pytest.mark.parametrize("name, method, options, attempts, final", RETRIES,
                         ids=[row[0] for row in RETRIES])
def test_only_causes_in_retry_on_use_up_retries(retried, name, method, options, attempts,
                                                final):
    assert state_of(retried.ws, name) == final
    executions = len(attempts) + (final == "ConfigsCompleted")
    assert ran(retried.ledger, name) == ["s0"] * executions + (
        ["s1"] if final == "ConfigsCompleted" else [])
    info = show(retried.ws, name)
    s0 = info["tasks"][0]
    assert [(f["cause"], f["counted"]) for f in s0["failures"]] == attempts
    assert s0["attempts"] == executions
    if final == "ConfigsFailed":
        assert info["failure"]["attempts"] == executions
        assert f"failed after {executions} attempt(s)" in error_text(retried.ws, name)
    if options.get("retry_delay"):
        first, second = s0["failures"]
        second_started = second["ended"] - second["seconds"]
        assert second_started - first["ended"] >= options["retry_delay"]


@pytest.mark.slow
def test_retries_used_before_an_interruption_stay_used(ws, tasks_dir, ledger, tmp_path):
    """``retries: 1``: attempt 1 fails (counted), attempt 2 is cut short by a stopped worker
    (not counted), attempt 3 fails (counted): that is the retry used up, no fourth."""
    flags = {"started_flag": str(tmp_path / "started"), "go_flag": str(tmp_path / "go")}
    queue(ws, tasks_dir, ledger, {"twice": steps("FailThenHold", s0={"retries": 1})}, **flags)
    signal_worker_mid_step(ws, tmp_path, flags, signal.SIGTERM)
    assert state_of(ws, "twice") == "ConfigsToRun"
    Path(flags["go_flag"]).touch()
    assert work(ws).returncode == 1
    assert ran(ledger, "twice") == ["s0"] * 3
    info = show(ws, "twice")
    assert [(f["cause"], f["counted"]) for f in info["tasks"][0]["failures"]] == [
        ("exception", True), ("interrupted", False), ("exception", True)]
    assert info["failure"]["attempts"] == info["tasks"][0]["attempts"] == 3
    assert "RuntimeError: attempt 3 fails" in info["failure"]["detail"]


def test_retry_gives_a_failed_step_its_retries_anew(ws, tasks_dir, ledger):
    """Attempts are numbered across runs; ``retry NAME`` is the user asking for more, so the
    step gets its ``retries`` again."""
    queue(ws, tasks_dir, ledger, {"again": steps("Fail", s0={"retries": 1})})
    assert work(ws).returncode == 1
    assert run_cli("retry", "again", ws=ws).returncode == 0
    assert work(ws).returncode == 1
    assert ran(ledger, "again") == ["s0"] * 4
    info = show(ws, "again")
    assert info["failure"]["attempts"] == info["tasks"][0]["attempts"] == 4
    assert [f["counted"] for f in info["tasks"][0]["failures"]] == [True] * 4
    log = (ws / "Output" / "again" / "logs" / "s0.log").read_text()
    assert "attempt 2 of 2 failed: " in log and "attempt 4 of 4 failed: " in log


# --- stalls ---------------------------------------------------------------------------------
def _stalled(ws: Path) -> dict | None:
    status = json.loads(run_cli("status", "--json", ws=ws).stdout)
    row = next(e for e in status["experiments"] if e["name"] == "quiet")
    step = next(t for t in row["tasks"] if t["id"] == "s0")
    return row if step.get("stalled") else None


def test_a_step_that_stops_reporting_progress_is_flagged_stalled(ws, tasks_dir, ledger,
                                                                 tmp_path):
    """``stall_after`` alone only warns: the row says stalled; the step goes on."""
    flags = {"started_flag": str(tmp_path / "started"), "go_flag": str(tmp_path / "go")}
    queue(ws, tasks_dir, ledger, {"quiet": steps("Stall", s0={"stall_after": 1})}, **flags)
    worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty")
    try:
        started_pid(Path(flags["started_flag"]))
        row = wait_until(lambda: _stalled(ws), 20, "the step to be flagged stalled")
        assert row["state"] == "running"
        assert "running (stalled)" in run_cli("status", ws=ws).stdout
        Path(flags["go_flag"]).touch()
        assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert state_of(ws, "quiet") == "ConfigsCompleted"
    assert show(ws, "quiet")["tasks"][0]["result"] == "went on"


def test_stall_action_kill_fails_a_stalled_step_with_cause_stalled(ws, tasks_dir, ledger,
                                                                   tmp_path):
    queue(ws, tasks_dir, ledger, {"quiet": steps("Stall", s0={
        "stall_after": 1, "stall_action": "kill"})}, started_flag=str(tmp_path / "started"),
        go_flag=str(tmp_path / "never"), max_wait=30)
    result = work(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    failure = show(ws, "quiet")["failure"]
    assert failure == {"step": "s0", "cause": "stalled", "attempts": 1, "detail":
                       "reported no progress for 1 s (stall_after) and was killed"}
