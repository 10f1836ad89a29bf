"""A worker imports a sweep's code once per slot, and again as soon as any file of it
changes: what the steps run is always the code on disk when their experiment started."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import commit_repo, make_config, run_cli, state_of, write_config

TASKS_PY = textwrap.dedent('''
    import os
    from pathlib import Path

    import helpers
    from orchestration import TaskBase

    HERE = Path(__file__).parent
    with open(HERE.parent / "imports.txt", "a") as fh:  # one line per import of this code
        fh.write(f"{os.getpid()}\\n")


    class Report(TaskBase):
        """Returns the code's value and the pid of the process that imported it."""

        def run(self):
            if self.config.get("edit"):  # change the code for the experiments after this one
                (HERE / "helpers.py").write_text(f"VALUE = {self.config['edit']!r}\\n")
            return {"value": helpers.VALUE, "host": os.getppid()}
''')


def project(root: Path) -> Path:
    tasks = root / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "Tasks.py").write_text(TASKS_PY)
    (tasks / "helpers.py").write_text("VALUE = 'first'\n")
    commit_repo(root)
    return tasks


def test_a_sweep_imports_once_and_a_changed_file_is_imported_again(ws, tmp_path):
    tasks = project(tmp_path / "project")
    names = ["a1", "a2", "a3", "b1", "b2"]
    for name in names:
        entry = {"id": "report", "method": "Report"}
        if name == "a3":  # its step rewrites helpers.py: b1 and b2 must see the new code
            entry["edit"] = "second"
        write_config(ws, name, make_config(tasks, name, [entry]))
    assert run_cli("ready", ws=ws).returncode == 0
    worker = run_cli("worker", "--exit-when-empty", ws=ws, timeout=180)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert all(state_of(ws, name) == "ConfigsCompleted" for name in names)

    results = {name: json.loads(run_cli("show", name, "--json", ws=ws).stdout)["tasks"][0]
               ["result"] for name in names}
    assert [results[n]["value"] for n in names] == ["first"] * 3 + ["second"] * 2
    # ready's own import (it checks the methods exist), then the worker's: a1-a3 in one,
    # b1-b2 in the next
    imports = (tmp_path / "project" / "imports.txt").read_text().split()
    assert len(imports) == 3, imports
    assert {results[n]["host"] for n in ("a1", "a2", "a3")} == {int(imports[1])}
    assert {results[n]["host"] for n in ("b1", "b2")} == {int(imports[2])}
