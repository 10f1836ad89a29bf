"""Slurm without a cluster: the script ``slurm submit`` writes, the values it refuses, what
``status`` and ``slurm cancel`` say where Slurm is missing or failing, and how the in-task
wrapper passes signals to its worker. (tests/slurm/ runs all of it on a real cluster.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.slurm.script import SlurmRequest, render, sbatch_quote
from tests.conftest import run_cli, wait_until

PYTHON = "/opt/venv/bin/python"


def directives(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def test_the_script_is_an_array_of_workers_warned_before_the_time_limit():
    script = render(Path("/shared/ws"), PYTHON, SlurmRequest(workers=4, partition="gpu",
                                                             cpus_per_worker=2, mem="16G",
                                                             time="1-00:00:00", account="lab"))
    assert directives(script) == [
        "#SBATCH --job-name=jo-ws", "#SBATCH --array=0-3", "#SBATCH --chdir=/shared/ws",
        "#SBATCH --output=/shared/ws/Misc/slurm/%A/out-%a.txt",
        "#SBATCH --error=/shared/ws/Misc/slurm/%A/err-%a.txt", "#SBATCH --open-mode=append",
        "#SBATCH --signal=B:USR1@120", "#SBATCH --no-requeue", "#SBATCH --partition=gpu",
        "#SBATCH --account=lab", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=16G",
        "#SBATCH --time=1-00:00:00"]
    command = script.split("\nexec ", 1)[1]
    assert command == (f"{PYTHON} -m orchestration.slurm.task -- \\\n    {PYTHON} -m "
                       "orchestration worker --exit-when-empty --workspace /shared/ws\n")


def test_gpus_scheduler_and_requeue_appear_only_when_asked():
    script = render(Path("/shared/my ws"), PYTHON, SlurmRequest(
        workers=1, gpus_per_worker="a100:2", scheduler_url="http://sched:8082", requeue=True,
        sbatch_args=["--qos=high", "--exclusive"]))
    assert {"#SBATCH --gres=gpu:a100:2", "#SBATCH --requeue", "#SBATCH --qos=high",
            "#SBATCH --exclusive", '#SBATCH --chdir="/shared/my ws"'} <= set(directives(script))
    assert script.rstrip().endswith(
        "-m orchestration.slurm.task --requeue -- \\\n"
        f"    {PYTHON} -m orchestration worker --exit-when-empty --workspace '/shared/my ws' "
        '--scheduler-url http://sched:8082 --gpus "$CUDA_VISIBLE_DEVICES"')


@pytest.mark.parametrize("value, quoted", [
    ("debug", "debug"),
    ("a b", '"a b"'),
    ('say "hi"', r'"say \"hi\""'),
    ("x #1", r'"x \#1"'),
    ("back\\slash", r'"back\\slash"'),
])
def test_sbatch_values_are_quoted_the_way_sbatch_unquotes_them(value, quoted):
    assert sbatch_quote(value) == quoted  # the cluster test submits such values for real


@pytest.fixture
def no_slurm(tmp_path: Path) -> dict[str, str]:
    """An environment in which no Slurm command can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {"PATH": str(empty)}


@pytest.mark.parametrize("args, words", [
    (["--workers", "0"], "--workers 0: give at least 1"),
    (["--workers", "1", "--partition", "a\nb"], "--partition 'a\\nb': expected a Slurm name"),
    (["--workers", "1", "--mem", "16GB"], "--mem '16GB': expected a size"),
    (["--workers", "1", "--time", "1 day"], "--time '1 day': expected minutes, HH:MM:SS"),
    (["--workers", "1", "--gpus-per-worker", "0"], "--gpus-per-worker '0': expected a count"),
    (["--workers", "1", "--cpus-per-worker", "0"], "--cpus-per-worker 0: give at least 1"),
    (["--workers", "1", "--sbatch-arg=--array=0-99"], "sets --array itself (use --workers)"),
    (["--workers", "1", "--sbatch-arg=--output=x"], "sets --output itself"),
    (["--workers", "1", "--sbatch-arg=-q"], "write the sbatch option in its long form"),
    (["--workers", "1", "--sbatch-arg=--comment=a\nb"], "line breaks and control characters"),
    (["--workers", "1", "--scheduler-url", "http://a b"], "--scheduler-url 'http://a b'"),
])
def test_submit_refuses_bad_values_before_anything_is_written(ws, no_slurm, args, words):
    out = run_cli("slurm", "submit", *args, ws=ws, env=no_slurm)
    assert out.returncode == 2
    assert out.stderr.startswith("error: cannot submit:") and words in out.stderr, out.stderr
    assert not (ws / "Misc" / "slurm").exists()


def test_submit_without_slurm_says_so_and_leaves_nothing(ws, no_slurm):
    out = run_cli("slurm", "submit", "--workers", "2", ws=ws, env=no_slurm)
    assert out.returncode == 2
    assert "error: sbatch not found: Slurm's commands are not on PATH here" in out.stderr
    assert list((ws / "Misc" / "slurm").iterdir()) == []


def test_slurm_without_a_subcommand_says_what_to_do(ws):
    out = run_cli("slurm", ws=ws)
    assert out.returncode == 2 and "slurm submit --workers N" in out.stderr


@pytest.mark.parametrize("env, words", [
    ({}, "squeue not found"),
    ({"SLURM_CONF": "empty.conf"}, "squeue failed (exit status 1): squeue: fatal: Unable to "
                                   "process configuration file"),
], ids=["squeue-missing", "squeue-fails"])
def test_status_works_without_slurm_and_says_why_in_one_line(ws, no_slurm, tmp_path, env,
                                                             words):
    (ws / "Misc" / "slurm" / "123").mkdir(parents=True)
    if "SLURM_CONF" in env:
        (tmp_path / "empty.conf").touch()
        env = {"SLURM_CONF": str(tmp_path / "empty.conf"), "PATH": os.environ["PATH"]}
    else:
        env = no_slurm
    out = run_cli("status", ws=ws, env=env)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("slurm:")]
    assert len(lines) == 1 and lines[0].startswith("slurm: cannot list jobs 123: ")
    assert words in lines[0]
    data = json.loads(run_cli("status", "--json", ws=ws, env=env).stdout)
    assert words in data["slurm"]["error"]
    assert data["slurm"]["jobs"][0]["finished"] is False  # not known: not marked finished


def test_cancel_refuses_what_is_not_ours_or_not_there(ws, no_slurm):
    nothing = run_cli("slurm", "cancel", ws=ws, env=no_slurm)
    assert nothing.returncode == 2
    assert "no Slurm job of this workspace is pending or running" in nothing.stderr
    for job, words in (("12;rm", "is not a job id"), ("77", "job 77 was not submitted from "
                                                            "this workspace")):
        out = run_cli("slurm", "cancel", job, ws=ws, env=no_slurm)
        assert out.returncode == 2 and words in out.stderr, out.stderr


CHILD = """
import signal, sys, time
from pathlib import Path
log = Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: (log.write_text("TERM"), sys.exit(0)))
Path(sys.argv[2]).touch()
time.sleep(60)
sys.exit(5)
"""


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_the_task_wrapper_stops_its_worker_with_sigterm(tmp_path, sig):
    """Slurm's time-limit warning (USR1) and a TERM for the wrapper alone both reach the
    worker as SIGTERM, which makes it put its experiments back in the queue."""
    log, ready = tmp_path / "got", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.slurm.task", "--",
                             sys.executable, "-c", CHILD, str(log), str(ready)],
                            stdout=subprocess.PIPE, text=True)
    wait_until(ready.exists, 20, "the child to start")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and log.read_text() == "TERM"
    warned = " after the time-limit warning" if sig == signal.SIGUSR1 else ""
    assert out == f"worker exited with status 0{warned}\n"  # no --requeue: no requeue
