"""The Luigi visualiser as a dashboard: a real luigid, a worker running a small sweep with
progress, and what its JSON API and a headless Chromium show of it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.conftest import make_config, run_cli, state_of, wait_until, write_config
from tests.e2e.browser import Browser, chromium_binary

pytestmark = pytest.mark.slow
TASKS = [{"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "WaitForFlag"},
         {"id": "eval", "method": "Ledger"}]
NAMES = ["lr-1", "lr-2"]


def task_list(url: str, status: str) -> dict[str, dict]:
    """luigid's ``/api/task_list`` for one status: {task id: task}."""
    query = urllib.parse.quote(json.dumps({"status": status, "upstream_status": "",
                                           "search": ""}))
    with urllib.request.urlopen(f"{url}/api/task_list?data={query}", timeout=10) as reply:
        return json.load(reply)["response"]


def experiments_waiting(url: str) -> dict[str, dict]:
    """The Experiment tasks, once both show their experiment held in ``train`` with an ETA
    (learned from ``train``'s own progress: no earlier run of it exists)."""
    pending = {t["params"]["name"]: t for t in task_list(url, "PENDING").values()
               if t["name"] == "Experiment"}
    messages = [pending.get(n, {}).get("status_message") or "" for n in NAMES]
    if all("train" in m and "left" in m for m in messages):
        return pending
    return {}


@pytest.fixture
def sweep(ws, tasks_dir, luigid, tmp_path):
    """Two experiments running at once against luigid, both held in their ``train`` step
    (which reports progress) until the test lets them go."""
    go = tmp_path / "go"
    for name in NAMES:
        write_config(ws, name, make_config(tasks_dir, f"sweep/{name}", TASKS, go_flag=str(go),
                                           max_wait=20,
                                           started_flag=str(tmp_path / f"{name}.started")))
    assert run_cli("ready", ws=ws).returncode == 0
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "orchestration", "worker", "--workers",
                               "2", "--scheduler-url", luigid, "--exit-when-empty"],
                              env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"url": luigid, "go": go, "ws": ws}
        go.touch()
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        go.touch()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()


def test_api_lists_running_steps_and_experiment_progress(sweep):
    url = sweep["url"]
    pending = wait_until(lambda: experiments_waiting(url), 60, "experiment progress messages")
    running = wait_until(lambda: (tasks := task_list(url, "RUNNING")) and len(tasks) == 2
                         and all(t["status_message"] for t in tasks.values()) and tasks,
                         30, "both train steps to be RUNNING with a message")
    assert {(t["name"], t["params"]["step"]) for t in running.values()} == {("Step", "train")}
    assert {t["params"]["name"] for t in running.values()} == set(NAMES)
    assert all(t["status_message"].startswith("waiting") for t in running.values())
    for name in NAMES:
        message = pending[name]["status_message"]
        assert message.startswith("1/3 steps, train "), message
        assert "left" in message
        assert "claim" not in pending[name]["params"]  # hidden: the view stays readable
        assert "workspace" not in pending[name]["params"]
        assert 0 <= pending[name]["progress_percentage"] < 100
    done = task_list(url, "DONE")
    assert any(t["params"].get("step") == "prepare" for t in done.values())

    sweep["go"].touch()
    finished = wait_until(
        lambda: [t for t in task_list(url, "DONE").values() if t["name"] == "Experiment"]
        if all(state_of(sweep["ws"], n) == "ConfigsCompleted" for n in NAMES) else None,
        60, "the sweep to finish")
    assert {t["status_message"] for t in finished} == {"3/3 steps, completed"}
    assert {t["progress_percentage"] for t in finished} == {100}


@pytest.mark.skipif(chromium_binary() is None,
                    reason="needs Debian's `chromium` (apt-get install chromium; .ci/run does)")
def test_visualiser_page_shows_steps_and_experiment_status(sweep, tmp_path):
    url = sweep["url"]
    wait_until(lambda: experiments_waiting(url), 60, "experiment progress messages")
    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.open(f"{url}/static/visualiser/index.html")
        text = browser.wait_for(
            "document.querySelector('#taskTable') && "
            "document.querySelector('#taskTable').innerText.includes('Experiment') && "
            "document.querySelector('#taskTable').innerText.includes('Step') && "
            "document.querySelector('#taskTable').innerText")
        for name in NAMES:
            assert name in text
        # the Experiment row's "status message" button opens the message, as for a person
        clicked = browser.evaluate(
            "(() => { const b = [...document.querySelectorAll('#taskTable button.statusMessage')]"
            ".find(b => (b.dataset.displayName || '').startsWith('Experiment(')); "
            "if (b) b.click(); return b ? b.dataset.displayName : null; })()")
        assert clicked and "lr-" in clicked
        message = browser.wait_for(
            "(document.querySelector('#statusMessageModal pre') || {}).textContent")
        browser.screenshot(tmp_path / "visualiser.png")
    finally:
        browser.close()
    assert message.startswith("1/3 steps, train "), message
    assert "left" in message


def test_a_failed_step_says_why_in_the_visualiser(ws, tasks_dir, luigid):
    """The Step row's status message carries the cause and detail (what ``status`` says in
    its why column); the Experiment row says which step failed and why."""
    write_config(ws, "broken", make_config(tasks_dir, "broken", [
        {"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "Fail"},
        {"id": "eval", "method": "Ledger"}]))
    assert run_cli("ready", ws=ws).returncode == 0
    worker = run_cli("worker", "--exit-when-empty", "--scheduler-url", luigid, ws=ws,
                     timeout=60)
    assert worker.returncode == 1, worker.stdout + worker.stderr
    failure = json.loads(run_cli("show", "broken", "--json", ws=ws).stdout)["failure"]
    failed = [t for t in task_list(luigid, "FAILED").values() if t["name"] == "Step"]
    assert [t["params"]["step"] for t in failed] == ["train"]
    assert failed[0]["status_message"] == f"failed: exception: {failure['detail']}"
    assert failure["detail"].startswith("ValueError: deliberate failure at Tasks.py:")
    experiment = next(t for t in task_list(luigid, "PENDING").values()
                      if t["name"] == "Experiment")
    assert experiment["status_message"] == "1/3 steps, train failed (exception)"
