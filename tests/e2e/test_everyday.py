"""Everyday commands of the first hour (issue 12, items 7-9), through the installed CLI:
``status --watch`` on a small terminal, ``--version`` and ``--help``, ``logs --follow``,
``remove``, and the time left while the first experiments run."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from orchestration import __version__
from orchestration.cli.main import COMMANDS, build_parser
from tests.conftest import make_config, run_cli, state_of, wait_until, write_config
from tests.e2e.terminal import on_terminal

BROKEN = "githubRepository: x\ntasks: [{id: train, method: Ledger}\n"  # not valid YAML


def held(tasks_dir: Path, tmp_path: Path, name: str, method: str = "WaitForFlag",
         max_wait: float = 60) -> dict:
    """A config whose one step runs until the test touches its go flag (at most ``max_wait``
    seconds), reporting progress ``elapsed / max_wait``."""
    return make_config(tasks_dir, name, [{"id": "train", "method": method,
                                          "max_wait": max_wait}],
                       started_flag=str(tmp_path / f"{name}.started"),
                       go_flag=str(tmp_path / f"{name}.go"))


@contextmanager
def worker(ws: Path, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """``job-orchestration worker ARGS`` in the background, its output in ``log``; killed at
    the end if it is still running."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "orchestration", "worker", "--poll",
                                 "0.2", *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def status_json(ws: Path) -> dict:
    result = run_cli("status", "--json", ws=ws)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- 7. tables that fit ---------------------------------------------------------------------
def last_frame(text: str) -> list[str]:
    """The lines of the last table a live view drew, its header first."""
    frame = text.split(" experiment ┃")[-1].split("\n")
    end = next((i for i, line in enumerate(frame) if not line.strip()), len(frame))
    return ["experiment ┃" + frame[0], *frame[1:end]]


def test_status_watch_keeps_the_totals_in_sight_on_a_small_terminal(ws, tasks_dir, tmp_path):
    write_config(ws, "a-held", held(tasks_dir, tmp_path, "a-held"))
    for name in ("f1", "f2", "f3"):
        write_config(ws, name, BROKEN)
    base = tmp_path / "q.yaml"
    base.write_text(yaml.safe_dump(make_config(tasks_dir, "q/${seed}", [
        {"id": "train", "method": "Ledger"}], seed=0)))
    assert run_cli("submit", str(base), "--sweep", "seed=range(30)", ws=ws).returncode == 0
    assert run_cli("ready", ws=ws).returncode == 2  # the three broken ones
    with worker(ws, tmp_path / "worker.log") as proc:
        wait_until(lambda: (tmp_path / "a-held.started").exists(), 30, "a-held to start")
        drawn = on_terminal("status", "--watch", ws=ws, rows=12, cols=80,
                            interrupt_when=lambda text: "everything)" in text)
        proc.send_signal(signal.SIGTERM)  # a-held goes back to the queue
        assert "everything)" in drawn.text, drawn.text  # else it ran until all had ended
        assert proc.wait(30) == 0
    assert drawn.returncode == 0, drawn.text
    frame = last_frame(drawn.text)
    assert len(frame) <= 11, frame  # one line is left for the cursor
    names = [line.split("│")[0].strip() for line in frame[2:] if "│" in line]
    assert names[:4] == ["a-held", "f1", "f2", "f3"] and len(names) >= 5, frame
    assert all(name.startswith("q-seed") for name in names[4:])  # then the queued ones
    below = " ".join(line for line in frame if "│" not in line)
    assert "3 failed, 30 queued, 1 running; 1 worker busy; " in below
    assert f"not shown: {30 - len(names[4:])} queued" in below

    piped = run_cli("status", ws=ws)  # into a pipe every cell is whole
    assert piped.returncode == 0
    why = "not valid YAML at line 3, column 1: did not find expected ',' or ']' (while " \
          "parsing a flow sequence started at line 2)"
    assert sum(why in line for line in piped.stdout.splitlines()) == 3, piped.stdout


# --- 8. everyday commands -------------------------------------------------------------------
def test_version_and_the_help_of_every_command(tmp_path):
    console_script = Path(sys.executable).with_name("job-orchestration")
    version = subprocess.run([str(console_script), "--version"], capture_output=True,
                             text=True, cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"job-orchestration {__version__}\n")
    assert run_cli("--version", cwd=tmp_path).stdout == version.stdout
    helps = {name: subprocess.Popen([sys.executable, "-m", "orchestration", name, "--help"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=tmp_path) for name in COMMANDS}
    parser = build_parser()
    for name, proc in helps.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == "", (name, err)
        assert "``" not in out and not re.search(r":\w+:`", out), (name, out)  # no raw reST
        examples = re.findall(r"job-orchestration (.+)", out.lower().split("example", 1)[-1])
        assert examples, f"{name} --help shows no example:\n{out}"
        for example in examples:  # and the example is a valid command line
            args = parser.parse_args(shlex.split(example))
            assert args.command == name, example


def test_logs_follow_and_remove(ws, tasks_dir, ledger, tmp_path):
    """``logs --follow`` tails a running step's log until the step ends; ``remove`` moves a
    finished or failed experiment to Misc/trash/ and refuses a queued or running one."""
    def one(name: str, method: str = "Ledger") -> dict:
        return make_config(tasks_dir, name, [{"id": "train", "method": method}],
                           ledger=str(ledger))

    for name, method in (("a-done", "Ledger"), ("b-done", "Ledger"), ("c-fail", "Fail"),
                         ("e-queued", "Ledger")):
        write_config(ws, name, one(name, method))
    write_config(ws, "d-chat", held(tasks_dir, tmp_path, "d-chat", "Chatty"))
    assert run_cli("ready", ws=ws).returncode == 0
    log = ws / "Output" / "d-chat" / "logs" / "train.log"
    with worker(ws, tmp_path / "worker.log", "--exit-when-empty") as proc:
        wait_until(lambda: (tmp_path / "d-chat.started").exists(), 30, "d-chat to start")
        follow = subprocess.Popen([sys.executable, "-m", "orchestration", "logs", "d-chat",
                                   "--follow"], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)})
        seen = []
        while not any(line.startswith("line 3 ") for line in seen):
            seen.append(follow.stdout.readline())  # the step prints a line every 0.1 s
        for name, state in (("d-chat", "running"), ("e-queued", "queued")):
            refused = run_cli("remove", name, ws=ws)
            assert refused.returncode == 2
            assert f"{name} is {state}; only completed or failed experiments" in refused.stderr
        (tmp_path / "d-chat.go").touch()
        rest = follow.stdout.read()  # to the end: it exits once the step has ended
        assert follow.wait(30) == 0
        assert proc.wait(60) == 1  # c-fail failed
    followed = "".join(seen) + rest
    last = re.findall(r"^line \d+ ", log.read_text(), re.M)[-1]
    printed = re.findall(r"^line (\d+) ", followed, re.M)
    assert printed == [str(i) for i in range(1, int(last.split()[1]) + 1)], followed[-500:]
    again = run_cli("logs", "d-chat", "train", "--follow", ws=ws)  # ended: prints, returns
    assert again.returncode == 0 and last in again.stdout
    nothing = run_cli("logs", "d-chat", "--follow", ws=ws)
    assert nothing.returncode == 2 and "has no running step to follow" in nothing.stderr

    trash = ws / "Misc" / "trash"
    removed = run_cli("remove", "a-done", "c-fail", ws=ws)
    assert removed.returncode == 0, removed.stderr
    assert re.search(rf"^a-done: removed; moved to {re.escape(str(trash))}/a-done-\d+",
                     removed.stdout, re.M), removed.stdout
    [a_trash] = trash.glob("a-done-*")
    assert (a_trash / "output" / "train.txt").exists() and (a_trash / "a-done.yaml").exists()
    assert not (ws / "Output" / "a-done").exists()
    [c_trash] = trash.glob("c-fail-*")
    assert (c_trash / "c-fail.error.txt").exists()
    kept = run_cli("remove", "b-done", "--keep-output", ws=ws)
    assert kept.returncode == 0, kept.stderr
    assert (ws / "Output" / "b-done" / "train.txt").exists()
    assert not (ws / "Output" / "b-done" / "run.json").exists()
    listed = {e["name"] for e in status_json(ws)["experiments"]}
    assert listed == {"d-chat", "e-queued"}
    assert run_cli("show", "a-done", ws=ws).returncode == 2
    write_config(ws, "a-done", one("a-done"))  # the name and the folder are free again
    assert run_cli("ready", ws=ws).returncode == 0
    assert state_of(ws, "a-done") == "ConfigsToRun"


# --- 9. the time left from the first minute -------------------------------------------------
SLOW = 6.0  # seconds of the slow run; the run before it took a quarter of that


def test_time_left_from_the_first_minute_and_a_slow_run_believed(ws, tasks_dir, tmp_path):
    write_config(ws, "a-first", held(tasks_dir, tmp_path, "a-first", max_wait=30))
    for name, seconds in (("b-history", SLOW / 4), ("c-slow", SLOW)):
        write_config(ws, name, make_config(tasks_dir, name, [
            {"id": "train", "method": "Paced", "seconds": seconds}]))
    assert run_cli("ready", ws=ws).returncode == 0

    def running(name: str, fraction: float) -> tuple[dict, dict] | None:
        status = status_json(ws)
        row = next(e for e in status["experiments"] if e["name"] == name)
        step = row["tasks"][0]
        return (status, row) if step["state"] == "running" and (step["progress"] or 0) \
            >= fraction else None

    with worker(ws, tmp_path / "worker.log", "--exit-when-empty") as proc:
        # no history at all: the first step's own rate gives its time left, flagged rough
        status, row = wait_until(lambda: running("a-first", 0.05), 30, "a-first's progress")
        assert status["eta_rough"] is True  # (its start-up counts: a little more than 30 s)
        assert row["eta_seconds"] == pytest.approx(30 - row["tasks"][0]["seconds"], rel=0.2)
        assert "(rough: little history yet)" in run_cli("status", ws=ws).stdout
        (tmp_path / "a-first.go").touch()
        # b-history took SLOW / 4; c-slow runs 4x slower: at 40% its own rate wins
        status, row = wait_until(lambda: running("c-slow", 0.4), 60, "c-slow at 40%")
        elapsed = row["tasks"][0]["seconds"]
        assert elapsed + row["eta_seconds"] == pytest.approx(SLOW, abs=0.15 * SLOW), row
        # (a blend weighted by the fraction done said 0.5 * SLOW + 0.5 * SLOW / 4 in all)
        assert status["eta_rough"] is False
        assert proc.wait(60) == 0
