"""Workspaces for the benchmarks: configs of trivial steps, and big workspaces cloned from
a few real runs (a real record, markers and logs each, only their names and seeds changed),
so ``status``/``results``/the pages read what they would read after a real sweep."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a fresh checkout runs without installing the package

from orchestration.ready import ready_all  # noqa: E402
from orchestration.states import ExperimentState  # noqa: E402
from orchestration.worker import Worker  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402

TASKS_PY = '''
import os
import time

from orchestration import TaskBase

class Noop(TaskBase):
    def run(self):
        return None

class Report(TaskBase):
    def run(self):
        print("a line of log")
        return {"loss": 0.1}

class Boom(TaskBase):
    def run(self):
        raise ValueError("deliberate failure")

class Hold(TaskBase):
    """Runs until the file config["release"] appears (at most a minute)."""
    def run(self):
        deadline = time.time() + 60
        while not os.path.exists(self.config["release"]) and time.time() < deadline:
            time.sleep(0.02)
'''
# for the CLI in subprocesses: this checkout first, output line by line
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p), "PYTHONUNBUFFERED": "1"}
SHARES = {ExperimentState.COMPLETED: 0.9, ExperimentState.FAILED: 0.09,
          ExperimentState.QUEUED: 0.01}


def code_folder(root: Path) -> Path:
    """A folder holding the benchmarks' Tasks.py."""
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "Tasks.py").write_text(TASKS_PY)
    return code


def write_config(ws: Workspace, name: str, code: Path, methods: list[str],
                 **fields: object) -> Path:
    """A config of ``methods`` (one step each, in a chain) in ConfigSources, old enough
    for ``ready`` to take it (it leaves files written a moment ago to settle)."""
    path = ws.folder(ExperimentState.NEW) / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "githubRepository": "https://example.com/x", "pathToTasks": str(code),
        "outputDir": name, **fields,
        "tasks": [{"id": f"s{i}", "method": m} for i, m in enumerate(methods)]}))
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def clone_workspace(root: Path, n: int) -> Workspace:
    """``n`` experiments: clones of a completed, a failed and a queued real run (90/9/1 %),
    each with its own name, paths and ``seed`` (the field a sweep varies)."""
    code = code_folder(root)
    ws = Workspace(root / "ws")
    ws.init()
    seeds = {"done": ["Report", "Report", "Report"], "bad": ["Report", "Boom", "Report"]}
    for name, methods in seeds.items():
        write_config(ws, name, code, methods, lr=0.1, seed=0)
    ready_all(ws)
    Worker(ws, exit_when_empty=True, poll=0.05).run()
    write_config(ws, "waiting", code, seeds["done"], lr=0.1, seed=0)
    ready_all(ws)
    sources = {ExperimentState.COMPLETED: "done", ExperimentState.FAILED: "bad",
               ExperimentState.QUEUED: "waiting"}
    made = 0
    for state, share in SHARES.items():
        seed = sources[state]
        count = n - made if state is ExperimentState.QUEUED else int(n * share)
        seed_out = str(ws.output_dir(seed))
        record = (Path(seed_out) / "run.json").read_text()
        config = (ws.folder(state) / f"{seed}.yaml").read_text()
        for i in range(count - 1):
            name = f"{seed}-{i:05d}"
            out = ws.output / name
            shutil.copytree(seed_out, out, symlinks=True)
            (out / "run.json").write_text(  # its own paths and seed, as a real run has
                record.replace(f'"{seed_out}', f'"{out}').replace(
                    f'"name": "{seed}"', f'"name": "{name}"').replace(
                    '"seed": 0', f'"seed": {i + 1}'))
            (ws.folder(state) / f"{name}.yaml").write_text(
                config.replace("seed: 0", f"seed: {i + 1}"))
            error = ws.folder(state) / f"{seed}.error.txt"
            if error.exists():
                shutil.copy(error, ws.folder(state) / f"{name}.error.txt")
            ws.register(name, out)
        made += count
    return ws
