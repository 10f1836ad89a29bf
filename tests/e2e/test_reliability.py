"""Reliability, round 2 (issue 16), through the installed CLI: each test reproduces one item
of the adversarial pass with real processes, real signals and real git repositories, and
failed against the code before its fix (0420c8f). The kill -9 loop at the end checks the
promises together: one folder per config, no step twice at once, no finished step again.

Items covered elsewhere: 2 (the race itself) and 13 (bytes read) in tests/test_reliability.py;
7 and the huge integer of 3 in tests/test_config_loader.py; 17 in tests/test_scheduler.py.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from orchestration.fsutil import pid_alive
from tests.conftest import (FIXTURES, commit_repo, git, make_config, run_cli, state_of,
                            wait_until, write_config)
from tests.e2e.test_execution import error_text, queue, show, steps, work
from tests.e2e.test_faults import background, leftovers

FOLDERS = ("ConfigSources", "ConfigsToRun", "ConfigsInProgress", "ConfigsCompleted",
           "ConfigsFailed")
TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture
def rel_tasks(tmp_path: Path) -> Path:
    """A committed git repository whose ``tasks/`` holds tests/fixtures/reliability/Tasks.py."""
    repo = tmp_path / "project"
    shutil.copytree(FIXTURES / "reliability", repo / "tasks")
    return commit_repo(repo) / "tasks"


@dataclass(frozen=True)
class Execution:
    """One run of one step, from the ledger (``end`` is None when it was cut short)."""

    experiment: str
    step: str
    pid: int
    start: float
    end: float | None


def executions(ledger: Path) -> list[Execution]:
    """Every execution the ledger shows, in the order they started."""
    started: dict[tuple[str, str, int], float] = {}
    ended: dict[tuple[str, str, int], float] = {}
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        what, experiment, step, pid, at = line.split()
        (started if what == "start" else ended)[(experiment, step, int(pid))] = float(at)
    return sorted((Execution(*key, start, ended.get(key)) for key, start in started.items()),
                  key=lambda e: e.start)


def started(ledger: Path, experiment: str) -> list[str]:
    """The steps of ``experiment`` that started, in order, once per execution."""
    return [e.step for e in executions(ledger) if e.experiment == experiment]


def one_folder_each(ws: Path, names: list[str]) -> dict[str, str]:
    """The folder of each config; fails when one is in no folder or in two."""
    return {name: state_of(ws, name) for name in names}


def strict_json(text: str) -> object:
    """``text`` as JSON, refusing NaN and Infinity (Python's json accepts them; jq does not)."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


# --- 1: markers belong to one snapshot -----------------------------------------------------
def test_a_changed_config_never_inherits_the_steps_of_an_earlier_experiment_in_its_folder(
        ws, rel_tasks, ledger):
    """Item 1: the config of a completed experiment deleted by hand, a changed one with the
    same name and outputDir dropped in. It is refused with the ways out, never run on the
    old steps; with overwriteOutputFine its step runs again and returns the new value."""
    queue(ws, rel_tasks, ledger, {"exp": steps("Timed")}, value=1)
    assert work(ws).returncode == 0
    (ws / "ConfigsCompleted" / "exp.yaml").unlink()
    changed = make_config(rel_tasks, "exp", steps("Timed"), ledger=str(ledger), value=2)
    write_config(ws, "exp", changed)
    again = run_cli("ready", ws=ws)
    assert again.returncode == 2, again.stdout + again.stderr
    assert state_of(ws, "exp") == "ConfigsFailed"
    error = error_text(ws, "exp")
    assert "holds 1 finished step(s) of an earlier run of a different config (s0)" in error
    assert "Choose another outputDir" in error and "overwriteOutputFine: true" in error
    assert started(ledger, "exp") == ["s0"]

    write_config(ws, "exp-2", {**changed, "overwriteOutputFine": True})
    assert run_cli("ready", ws=ws).returncode == 0
    assert work(ws).returncode == 0
    assert started(ledger, "exp") == ["s0", "s0"]
    assert show(ws, "exp-2")["tasks"][0]["result"] == {"value": 2}


# --- 2: the whole process tree goes ---------------------------------------------------------
def test_a_setsid_grandchild_of_a_step_does_not_outlive_the_step(ws, rel_tasks, ledger,
                                                                 tmp_path):
    """Item 2: a step starts a process in a session of its own and returns."""
    pid_file = tmp_path / "grandchild"
    queue(ws, rel_tasks, ledger, {"leaves": steps("Detached")}, pid_file=str(pid_file))
    assert work(ws).returncode == 0
    grandchild = int(pid_file.read_text())
    wait_until(lambda: not pid_alive(grandchild), 10, "the step's setsid grandchild to die")


@pytest.mark.slow
def test_a_setsid_grandchild_of_a_step_does_not_outlive_its_killed_worker(ws, rel_tasks,
                                                                          ledger, tmp_path):
    """Item 2: kill -9 of the worker while its step's setsid grandchild runs. The worker's
    runner, code host and step die with it (parent-death signals); the grandchild, out of
    their reach, is killed by the next worker, which empties the dead worker's cgroup."""
    pid_file, go = tmp_path / "grandchild", tmp_path / "go"
    queue(ws, rel_tasks, ledger, {"held": steps("Detached", "Timed")}, pid_file=str(pid_file),
          go_flag=str(go))
    worker = background(ws, tmp_path / "worker.log", "worker", "--exit-when-empty")
    try:
        grandchild = wait_until(lambda: pid_file.exists() and pid_file.read_text()
                                and int(pid_file.read_text()), 30, "the step to start")
        tree = [p.pid for p in psutil.Process(worker.pid).children(recursive=True)
                if p.pid != grandchild]
    finally:
        worker.kill()
        worker.wait()
    wait_until(lambda: not any(map(pid_alive, tree)), 10,
               "the runner, code host and step to die with their worker")
    go.touch()
    again = work(ws)
    assert again.returncode == 0, again.stdout + again.stderr
    wait_until(lambda: not pid_alive(grandchild), 10, "the grandchild to be killed")
    assert "killed what a dead worker's steps left running" in again.stdout
    assert started(ledger, "held") == ["s0", "s0", "s1"]


# --- 3, 7, 11: one file never stops a command -------------------------------------------------
def hostile_head(tasks: Path, ledger: Path, name: str, task: str = "{id: t, method: Timed}"
                 ) -> str:
    return (f"githubRepository: https://github.com/me/project\npathToTasks: {tasks}\n"
            f"outputDir: hostile/{name}\nledger: {ledger}\ntasks: [{task}]\n")


def test_one_hostile_file_is_its_own_rejection_and_stops_no_other(ws, rel_tasks, ledger):
    """Items 3, 7 and 11 in one ``ready``: each file below once stopped ``ready`` for every
    file after it (or crashed each worker that claimed it). Each is now rejected on its
    own with its reason, the deep graph is queued, and the good config (last) too."""
    head = lambda name, **kw: hostile_head(rel_tasks, ledger, name, **kw)  # noqa: E731
    deep = [{"id": f"t{i}", "method": "Timed", "requires": [f"t{i + 1}"] if i < 2999 else []}
            for i in range(3000)]  # declared sink first: a recursive walk overflows
    files = {
        "int-key": (head("int-key") + "1: a\n", ["top level (line 6): key '1' is not text"]),
        "int-key-nested": (head("int-key-nested") + "sizes: {1: 64}\n",
                           ["sizes (line 6): key '1' is not text"]),
        "binary": (head("binary") + "blob: !!binary aGVsbG8=\n",
                   ["blob: binary data (!!binary, line 6) is not allowed"]),
        "huge-integer": (head("huge-integer") + "seed: " + "9" * 5000 + "\n",
                         ["a value cannot be read: Exceeds the limit"]),
        "timeout-1e10": (head("timeout-1e10", task="{id: t, method: Timed, timeout: 1e10}"),
                         ["tasks[0].timeout: 10000000000.0 is not valid", "at most 31622400"]),
        "long-outputDir": (head("long-outputDir").replace("hostile/long-outputDir",
                                                          "hostile/" + "d" * 300),
                           ["is too long (each folder name at most 200 bytes"]),
    }
    long_names = {"n" * 240: head("long-name"), "m" * 250: head("longest-name")}
    for name, (text, _) in files.items():
        write_config(ws, name, text)
    for name, text in long_names.items():  # "m" * 250: no room for a .error.txt beside it
        write_config(ws, name, text)
    write_config(ws, "deep-graph", make_config(rel_tasks, "hostile/deep", deep,
                                               ledger=str(ledger)))
    write_config(ws, "zz-good", make_config(rel_tasks, "hostile/good", steps("Timed"),
                                            ledger=str(ledger)))

    ready = run_cli("ready", "--verbose", ws=ws)
    assert ready.returncode == 2, ready.stdout + ready.stderr
    assert TRACEBACK not in ready.stderr, ready.stderr
    assert state_of(ws, "zz-good") == state_of(ws, "deep-graph") == "ConfigsToRun"
    for name, (_, expected) in files.items():
        assert state_of(ws, name) == "ConfigsFailed", ready.stderr
        error = error_text(ws, name)
        assert all(fragment in error for fragment in expected), error
    for name in long_names:  # left there, as a taken name is: renaming it is the fix
        assert state_of(ws, name) == "ConfigSources"
        assert (f"the file name is {len(name)} bytes long; an experiment's name may be at most"
                " 200") in ready.stderr


def test_a_worker_never_dies_of_one_experiments_data(ws, rel_tasks, ledger):
    """Item 3: a readied experiment whose run record was damaged, and a config copied into
    the queue by hand, each fail alone; the good experiment completes, and a worker started
    afterwards starts cleanly."""
    queue(ws, rel_tasks, ledger, {name: steps("Timed") for name in ("damaged", "fine")})
    (ws / "Output" / "damaged" / "run.json").write_text('{"state": "queued", "tasks": 7')
    write_config(ws, "by-hand", make_config(rel_tasks, "by-hand", steps("Timed"),
                                            ledger=str(ledger)), folder="ConfigsToRun")
    result = work(ws)
    assert result.returncode == 1, result.stdout + result.stderr
    assert TRACEBACK not in result.stderr, result.stderr
    assert one_folder_each(ws, ["damaged", "by-hand", "fine"]) == {
        "damaged": "ConfigsFailed", "by-hand": "ConfigsFailed", "fine": "ConfigsCompleted"}
    assert [e.experiment for e in executions(ledger)] == ["fine"]
    after = work(ws)
    assert after.returncode == 0 and TRACEBACK not in after.stderr, after.stderr


# --- 4: an interrupted ready is resumed --------------------------------------------------------
READY_FAULT = r"""
import errno, os, signal, sys
from pathlib import Path
from orchestration.cli.main import main
from orchestration.workspace import Workspace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "after-register":       # the name is reserved; nothing else is written
    real_register = Workspace.register
    def register(self, *args, **kwargs):
        real_register(self, *args, **kwargs)
        die()
    Workspace.register = register
elif point == "after-record":       # the run record is in place; the config not moved
    real_replace = os.replace
    def replace(src, dst, **kwargs):
        real_replace(src, dst, **kwargs)
        if Path(dst).name == "run.json":
            die()
    os.replace = replace
elif point == "before-move":        # everything written but the commit point
    real_move = Workspace.move
    def move(self, path, to, *args, **kwargs):
        if to.folder == "ConfigsToRun":
            die()
        return real_move(self, path, to, *args, **kwargs)
    Workspace.move = move
elif point == "disk-full":          # the run record cannot be put in place
    real_replace = os.replace
    def replace(src, dst, **kwargs):
        if Path(dst).name == "run.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst, **kwargs)
    os.replace = replace
sys.exit(main(["ready"]))
"""


@pytest.mark.parametrize("point", ["after-register", "after-record", "before-move",
                                   "disk-full"])
def test_an_interrupted_ready_is_resumed_by_the_next(ws, rel_tasks, ledger, point):
    """Item 4: ``ready`` killed -9 (or out of disk space) while it commits a config; the
    next ``ready`` queues it as if nothing had happened, and it runs once."""
    write_config(ws, "exp", make_config(rel_tasks, "exp", steps("Timed", "Timed"),
                                        ledger=str(ledger)))
    cut = subprocess.run([sys.executable, "-c", READY_FAULT, point], capture_output=True,
                         text=True, timeout=60,
                         env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)})
    if point == "disk-full":
        assert cut.returncode == 2 and "No space left on device" in cut.stderr, cut.stderr
        assert TRACEBACK not in cut.stderr, cut.stderr
    else:
        assert cut.returncode == -signal.SIGKILL, cut.stdout + cut.stderr
    assert state_of(ws, "exp") == "ConfigSources"
    again = run_cli("ready", ws=ws)
    assert again.returncode == 0, again.stdout + again.stderr
    assert work(ws).returncode == 0
    assert state_of(ws, "exp") == "ConfigsCompleted"
    assert started(ledger, "exp") == ["s0", "s1"]


# --- 5: symlinked configs -------------------------------------------------------------------
def test_a_symlinked_config_is_queued_as_a_copy_that_outlives_its_target(ws, rel_tasks,
                                                                        ledger):
    """Item 5: a config that is a link to another workspace file is queued as a copy (its
    target may move away); a link to nothing is rejected, saying so."""
    drafts = ws / "drafts"
    drafts.mkdir()
    target = write_config(ws, "exp", make_config(rel_tasks, "exp", steps("Timed"),
                                                 ledger=str(ledger)), folder="drafts")
    (ws / "ConfigSources" / "exp.yaml").symlink_to(target)
    (ws / "ConfigSources" / "dangling.yaml").symlink_to(drafts / "gone.yaml")
    ready = run_cli("ready", ws=ws)
    queued = ws / "ConfigsToRun" / "exp.yaml"
    assert queued.is_file() and not queued.is_symlink()
    assert ready.returncode == 2, ready.stdout + ready.stderr
    assert "is a symlink to" in error_text(ws, "dangling")
    target.rename(ws / "moved.yaml")
    status = json.loads(run_cli("status", "--json", ws=ws).stdout)
    assert {e["name"]: e["state"] for e in status["experiments"]} == {"exp": "queued",
                                                                       "dangling": "failed"}
    assert work(ws).returncode == 0
    assert state_of(ws, "exp") == "ConfigsCompleted"


# --- 6: each code folder in its own process ----------------------------------------------------
TASKS_IMPORTING_HELPERS = """
import helpers
from orchestration import TaskBase


class Who(TaskBase):
    def validate(self):
        if helpers.FOLDER != self.config["folder"]:
            return [f"saw the helpers.py of {helpers.FOLDER}"]
        return []

    def run(self):
        return helpers.FOLDER
"""
REGISTERS_A_RESOLVER = """
import os
from omegaconf import OmegaConf
OmegaConf.register_new_resolver("leak", lambda name: os.environ[name])
"""
LEAK = "leaked-9d2e71c4"


def test_each_code_folder_is_judged_on_its_own(ws, tmp_path):
    """Item 6: two code folders with a ``helpers.py`` each; one's Tasks.py registers an
    OmegaConf resolver at import. Every config sees its own folder's helpers, whatever
    was imported before it, and the resolver never resolves another config's value."""
    repo = tmp_path / "two"
    for folder in ("alpha", "beta"):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "helpers.py").write_text(f"FOLDER = {folder!r}\n")
        extra = REGISTERS_A_RESOLVER if folder == "beta" else ""
        (repo / folder / "Tasks.py").write_text(TASKS_IMPORTING_HELPERS + extra)
    commit_repo(repo)
    configs = {"a-alpha": ("alpha", {}), "b-beta": ("beta", {}), "c-alpha": ("alpha", {}),
               "d-alpha-leak": ("alpha", {"token": "${leak:LEAK_ME}"})}
    for name, (folder, extra) in configs.items():
        write_config(ws, name, make_config(repo / folder, name, [{"id": "who", "method": "Who"}],
                                           folder=folder, **extra))
    ready = run_cli("ready", ws=ws, env={"LEAK_ME": LEAK})
    assert ready.returncode == 2, ready.stdout + ready.stderr
    assert one_folder_each(ws, list(configs)) == {
        "a-alpha": "ConfigsToRun", "b-beta": "ConfigsToRun", "c-alpha": "ConfigsToRun",
        "d-alpha-leak": "ConfigsFailed"}
    assert "token: '${leak:LEAK_ME}' cannot be resolved" in error_text(ws, "d-alpha-leak")
    assert work(ws).returncode == 0
    assert {n: show(ws, n)["tasks"][0]["result"] for n in ("a-alpha", "b-beta", "c-alpha")} == {
        "a-alpha": "alpha", "b-beta": "beta", "c-alpha": "alpha"}
    assert not [p for p in ws.rglob("*") if p.is_file() and LEAK.encode() in p.read_bytes()]


# --- 8: git runs nothing the repository configures ------------------------------------------------
HOOK = "#!/bin/sh\ntouch '{ran}/{name}'\n"


def test_git_runs_no_command_a_repository_configures_and_records_no_credentials(
        ws, rel_tasks, ledger, tmp_path):
    """Item 8: a repository whose config names an fsmonitor program and whose hooks run on
    status and checkout; remotes with passwords in every URL scheme. ``ready`` (of a config
    accepted and one rejected), ``worker`` and ``rerun`` run none of those programs, and
    no password reaches any file of the workspace."""
    repo, ran = rel_tasks.parent, tmp_path / "ran"
    ran.mkdir()
    for name in ("fsmonitor", "post-index-change", "post-checkout", "reference-transaction"):
        script = (repo / ".git" / "hooks" / name) if name != "fsmonitor" else tmp_path / name
        script.write_text(HOOK.format(ran=ran, name=name))
        script.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(tmp_path / "fsmonitor"))
    passwords = {"ssh": "ssh://bob:PASS-ssh@example.com/me/project.git",
                 "https": "https://token:PASS-https@github.com/me/project",
                 "ftp": "ftp://bob:PASS-ftp@example.com/project.git",
                 "git": "git://bob:PASS-git@example.com/project.git"}
    for name, url in passwords.items():
        git(repo, "remote", "add", name, url)
    os.utime(rel_tasks / "Tasks.py")  # status refreshes the index: post-index-change
    write_config(ws, "accepted", make_config(rel_tasks, "accepted", steps("Timed"),
                                             ledger=str(ledger)))
    write_config(ws, "rejected", make_config(rel_tasks, "rejected", steps("Nope")))
    assert run_cli("ready", ws=ws).returncode == 2
    assert work(ws).returncode == 0
    rerun = run_cli("rerun", "accepted", ws=ws)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert work(ws).returncode == 0
    assert sorted(p.name for p in ran.iterdir()) == []
    leaked = [p for p in ws.rglob("*") if p.is_file() and b"PASS-" in p.read_bytes()]
    assert leaked == []
    remotes = json.loads((ws / "Output" / "accepted" / "run.json").read_text()
                         )["provenance"]["remotes"]
    assert remotes["ssh"] == ["ssh://bob@example.com/me/project.git"], remotes


# --- 9: user code holds no lock, reads no terminal, floods no terminal ----------------------------
FORKS_A_DAEMON = """
import os, time
from orchestration import TaskBase

pid = os.fork()
if pid == 0:  # a daemon, as a library might start one at import
    os.setsid()
    if os.fork() == 0:
        with open(os.environ["DAEMON_PIDS"], "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(120)
    os._exit(0)
os.waitpid(pid, 0)


class Quick(TaskBase):
    def run(self):
        return 1
"""
READS_STDIN_AND_FLOODS = """
import sys
from orchestration import TaskBase

sys.stdin.read()  # blocks as long as stdin is a terminal (or a pipe) nobody writes to
for _ in range(20):
    print("x" * (1 << 20))


class Quick(TaskBase):
    def run(self):
        return 1
"""


def code_folder(tmp_path: Path, name: str, source: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "Tasks.py").write_text(source)
    return folder


def test_a_daemon_forked_by_tasks_py_at_import_blocks_no_later_ready(ws, tmp_path):
    """Item 9: the daemon inherits nothing of ``ready`` (not its lock, not its output), so
    ``ready`` returns and the next one is not blocked."""
    folder = code_folder(tmp_path, "daemon", FORKS_A_DAEMON)
    daemons = tmp_path / "daemons"
    env = {"DAEMON_PIDS": str(daemons)}
    try:
        for name in ("first", "second"):
            write_config(ws, name, make_config(folder, name, [{"id": "q", "method": "Quick"}]))
            ready = run_cli("ready", ws=ws, env=env, timeout=30)
            assert ready.returncode == 0, ready.stdout + ready.stderr
            assert state_of(ws, name) == "ConfigsToRun"
        assert len(daemons.read_text().split()) == 2  # both imports did start one
    finally:
        for pid in daemons.read_text().split() if daemons.exists() else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_user_code_reads_no_stdin_and_its_prints_stay_out_of_our_output(ws, tmp_path):
    """Item 9: a Tasks.py that reads stdin at import, with ``ready``'s stdin a pipe nobody
    writes to, then prints 20 MB: ``ready`` and ``worker`` finish and print a few lines."""
    folder = code_folder(tmp_path, "noisy", READS_STDIN_AND_FLOODS)
    write_config(ws, "noisy", make_config(folder, "noisy", [{"id": "q", "method": "Quick"}]))
    for command in ("ready", "worker"):
        proc = subprocess.Popen([sys.executable, "-m", "orchestration", command,
                                 *(["--exit-when-empty"] if command == "worker" else [])],
                                env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=60)  # stdin stays open: never written to
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]
        assert len(out) + len(err) < 64 * 1024, f"{command} printed {len(out) + len(err)} bytes"
    assert state_of(ws, "noisy") == "ConfigsCompleted"


# --- 10: two ready at once ----------------------------------------------------------------------
def test_two_ready_at_the_same_moment_queue_each_config_once_and_reject_none(
        ws, rel_tasks, ledger):
    """Item 10: losing the race for a file to another ``ready`` is not a rejection."""
    names = [f"c{i:02d}" for i in range(30)]
    for name in names:
        write_config(ws, name, make_config(rel_tasks, name, steps("Timed"), ledger=str(ledger)))
    procs = [subprocess.Popen([sys.executable, "-m", "orchestration", "ready"],
                              env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, out + err
        assert "config rejected" not in out + err, out + err
    assert set(one_folder_each(ws, names).values()) == {"ConfigsToRun"}


# --- 12: JSON outputs are JSON ----------------------------------------------------------------
def test_json_outputs_stay_json_with_nan_and_infinity(ws, rel_tasks, ledger):
    """Item 12: NaN and infinities in a config and in a step's return value."""
    queue(ws, rel_tasks, ledger, {"odd": steps("Timed")}, score=float("nan"),
          value=float("inf"))
    assert work(ws).returncode == 0
    for args in (("status", "--json"), ("show", "odd", "--json"),
                 ("results", "--format", "json")):
        result = run_cli(*args, ws=ws)
        assert result.returncode == 0, result.stderr
        strict_json(result.stdout)


# --- 13: the size cap reads no more than the cap --------------------------------------------
PEAK_MEMORY = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write(done.stdout + done.stderr)
"""


def test_a_huge_config_file_is_refused_by_its_size_without_being_read(ws):
    """Item 13: a 600 MiB (sparse) file in ConfigSources; ``ready`` refuses it by its size
    and stays small (reading it whole took 600 MiB of memory)."""
    huge = ws / "ConfigSources" / "huge.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(600 * 1024 * 1024)
    os.utime(huge, (time.time() - 10, time.time() - 10))
    measured = subprocess.run([sys.executable, "-c", PEAK_MEMORY, sys.executable, "-m",
                               "orchestration", "ready"], capture_output=True, text=True,
                              timeout=120,
                              env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)})
    code, peak_kib = map(int, measured.stdout.split())
    assert code == 2, measured.stderr
    assert "file is 629145600 bytes; a config may be at most 1048576" in error_text(ws, "huge")
    assert peak_kib < 200 * 1024, f"ready used {peak_kib} KiB"


# --- 14: symlinks inside Output/ ------------------------------------------------------------
def test_a_symlink_inside_output_cannot_nest_one_experiment_in_another(ws, rel_tasks,
                                                                       ledger):
    """Item 14: ``Output/alias`` links to experiment ``outer``'s folder; ``alias/inner``
    would put ``inner`` inside it."""
    queue(ws, rel_tasks, ledger, {"outer": steps("Timed")})
    (ws / "Output" / "alias").symlink_to("outer")
    write_config(ws, "inner", make_config(rel_tasks, "alias/inner", steps("Timed"),
                                          ledger=str(ledger)))
    assert run_cli("ready", ws=ws).returncode == 2
    assert "is already used by experiment 'outer'" in error_text(ws, "inner")


# --- 15: a marker the step wrote is not ours ----------------------------------------------------
def test_a_marker_a_step_wrote_itself_does_not_count_as_done(ws, rel_tasks, ledger, tmp_path):
    """Item 15: a step writes a file where its marker goes (with the right snapshot) and then
    fails. After ``retry`` it runs again, and what it returns then is its result."""
    fixed = tmp_path / "fixed"
    queue(ws, rel_tasks, ledger, {"forger": steps("ForgesMarker", "Timed")},
          fix_flag=str(fixed))
    assert work(ws).returncode == 1
    assert show(ws, "forger")["tasks"][0]["state"] == "failed"
    fixed.touch()
    assert run_cli("retry", "forger", ws=ws).returncode == 0
    assert show(ws, "forger")["tasks"][0]["state"] == "pending"
    assert work(ws).returncode == 0
    assert started(ledger, "forger") == ["s0", "s0", "s1"]
    assert show(ws, "forger")["tasks"][0]["result"] == "real"


# --- the kill -9 loop ----------------------------------------------------------------------------
KILLS = 30
LOOP_EXPERIMENTS = 8
LOOP_STEPS = 8


def finished_steps(ws: Path, names: list[str]) -> set[tuple[str, str]]:
    """(experiment, step) of every marker in place."""
    return {(name, marker.name[:-len(".done.json")]) for name in names
            for marker in (ws / "Output" / name / ".orchestration").glob("*.done.json")}


@pytest.mark.slow
def test_an_exiting_worker_waits_out_a_claim_left_without_owner_and_runs_it(ws, rel_tasks,
                                                                          ledger):
    """A worker killed between its claim's rename and its owner file leaves a claim nobody
    owns (the kill loop below once ended so). ``worker --exit-when-empty`` must not take
    the queue for empty meanwhile: it waits out the grace, reaps the claim and runs it."""
    queue(ws, rel_tasks, ledger, {"orphan": steps("Timed")})
    os.rename(ws / "ConfigsToRun" / "orphan.yaml", ws / "ConfigsInProgress" / "orphan.yaml")
    result = work(ws)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "orphan: claimed but no worker named as its owner yet; waiting" in result.stdout
    assert state_of(ws, "orphan") == "ConfigsCompleted"


@pytest.mark.slow
def test_kill_9_of_the_worker_at_random_moments_loses_nothing_and_runs_nothing_twice(
        ws, rel_tasks, ledger, tmp_path):
    """The "done when" loop of issue 16: a worker with two slots, killed -9 at a random
    moment, again and again (at least 30 times), then left to finish. After each kill every
    config is in exactly one folder and the whole process tree of the killed worker is gone;
    in the ledger every step appends to, no step ever ran twice at the same moment and no
    step started again once its marker was in place; in the end everything completed."""
    rng = random.Random(os.environ.get("KILL_LOOP_SEED", time.time_ns()))
    names = [f"loop-{i}" for i in range(LOOP_EXPERIMENTS)]
    queue(ws, rel_tasks, ledger, {
        name: steps(*["Timed"] * LOOP_STEPS, **{f"s{j}": {"sleep": rng.uniform(0.2, 0.6)}
                                                for j in range(LOOP_STEPS)})
        for name in names})
    dead_by: dict[int, float] = {}    # pid of a step cut short -> when it was seen dead
    done_at: list[tuple[float, set[tuple[str, str]]]] = []  # markers in place at a moment
    for kill in range(KILLS):
        worker = background(ws, tmp_path / f"worker-{kill}.log", "worker", "--workers", "2")
        time.sleep(rng.uniform(0.3, 2.5))  # the random moment of the kill, by design
        try:
            tree = [p.pid for p in psutil.Process(worker.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        worker.kill()
        worker.wait()
        assert worker.returncode == -signal.SIGKILL, (tmp_path / f"worker-{kill}.log"
                                                      ).read_text()
        cut_short = [e.pid for e in executions(ledger) if e.end is None and e.pid not in dead_by]
        wait_until(lambda: not any(map(pid_alive, tree + cut_short)), 10,
                   f"the tree of killed worker {kill} to die (a ghost outlived it)")
        now = time.time()
        dead_by.update((pid, now) for pid in cut_short)
        done_at.append((now, finished_steps(ws, names)))
        one_folder_each(ws, names)
    assert len(dead_by) >= KILLS // 4, "too few kills landed mid-step to show anything"
    # a kill between a claim's rename and its owner file leaves a claim the final worker
    # waits out (30 s grace) before it runs it: room for that beside the work itself
    final = run_cli("worker", "--exit-when-empty", "--workers", "2", "--poll", "0.5", ws=ws,
                    timeout=180)
    assert final.returncode == 0, final.stdout + final.stderr

    assert set(one_folder_each(ws, names).values()) == {"ConfigsCompleted"}
    assert leftovers(ws) == []
    runs = executions(ledger)
    by_step: dict[tuple[str, str], list[Execution]] = {}
    for run in runs:
        by_step.setdefault((run.experiment, run.step), []).append(run)
    assert set(by_step) == {(n, f"s{j}") for n in names for j in range(LOOP_STEPS)}
    for key, tries in by_step.items():
        assert tries[-1].end is not None, f"{key} never finished"
        for before, after in zip(tries, tries[1:]):
            over = before.end if before.end is not None else dead_by[before.pid]
            assert over <= after.start, f"{key} ran twice at once: {before} and {after}"
    for moment, done in done_at:
        again = [r for r in runs if (r.experiment, r.step) in done and r.start > moment]
        assert again == [], f"finished steps started again: {again}"
    for name in names:  # the record agrees with the markers
        assert {t["state"] for t in show(ws, name)["tasks"]} == {"completed"}
