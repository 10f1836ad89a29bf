"""The experiments pages of ``job-orchestration scheduler``: a real scheduler (the CLI, in a
subprocess), a real worker running a small sweep through it, and what a headless Chromium
and plain HTTP clients get from the pages.

Screenshots of each page are kept under the test's tmp dir; with
``JOB_ORCHESTRATION_SCREENSHOTS=DIR`` they are copied there too, to look at."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import (make_code_repo, make_config, run_cli, scheduler_cli, state_of,
                            wait_until, write_config)
from tests.e2e.browser import Browser, chromium_binary

pytestmark = pytest.mark.slow
needs_chromium = pytest.mark.skipif(
    chromium_binary() is None,
    reason="needs Debian's `chromium` (apt-get install chromium; .ci/run does)")
XSS_NAME = "d-<img src=x onerror=window.pwned=1>"
QUICK = [{"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "Ledger"}]
BROKEN = [{"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "Fail"}]
HELD = [{"id": "prepare", "method": "Ledger"}, {"id": "train", "method": "Chatty"},
        {"id": "eval", "method": "Ledger"}]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def api_status(url: str, **params: str) -> dict:
    query = "?" + urllib.parse.urlencode(params) if params else ""
    status, body = get(f"{url}/experiments/api/status{query}")
    assert status == 200, body
    return json.loads(body)


def keep_screenshot(browser: Browser, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    browser.screenshot(path, full_page=True)
    if os.environ.get("JOB_ORCHESTRATION_SCREENSHOTS"):
        folder = Path(os.environ["JOB_ORCHESTRATION_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return path


def start_worker(ws: Path, url: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestration", "worker", "--workers", "2",
                             "--scheduler-url", url, "--exit-when-empty", "--poll", "0.2"],
                            env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One finished, one failed and one running experiment (held in a step that reports
    progress and logs a line every 0.1 s until the test lets it go), watched through the
    scheduler the worker uses."""
    root = tmp_path_factory.mktemp("sweep")
    tasks = make_code_repo(root / "project") / "tasks"
    ws = root / "ws"
    from orchestration.workspace import Workspace

    Workspace(ws).init()
    go = root / "go"
    extra = {"go_flag": str(go), "started_flag": str(root / "started"), "max_wait": 60}
    for name, steps in (("a-done", QUICK), ("b-broken", BROKEN), ("c-held", HELD),
                        (XSS_NAME, QUICK)):
        write_config(ws, name, make_config(tasks, f"sweep/{name[0]}", steps, **extra))
    assert run_cli("ready", ws=ws).returncode == 0
    with scheduler_cli(ws) as (url, _):
        worker = start_worker(ws, url, root / "worker.log")
        try:
            wait_until(lambda: (t := api_status(url)["totals"]).get("running") == 1
                       and t.get("failed") == 1 and t.get("completed") == 2, 90,
                       "a finished, a failed and a running experiment")
            yield {"url": url, "ws": ws, "go": go}
            go.touch()
            assert worker.wait(60) == 1, (root / "worker.log").read_text()  # one failed
        finally:
            go.touch()
            if worker.poll() is None:
                worker.kill()
                worker.wait()


@pytest.fixture
def browser(tmp_path):
    chromium = Browser(tmp_path / "chromium-profile")
    chromium.resize(1280, 800)
    yield chromium
    chromium.close()


ROWS = "[...document.querySelectorAll('#experiments tbody tr')].map(r => r.dataset.name)"


@needs_chromium
def test_list_shows_progress_moving_the_eta_why_one_failed_and_filters(sweep, browser,
                                                                      tmp_path):
    browser.open(f"{sweep['url']}/experiments")
    bar = "#experiments tr[data-name='c-held'] [role=progressbar]"
    before = browser.wait_for(f"Number(document.querySelector(\"{bar}\")"
                              "?.getAttribute('aria-valuenow'))")
    browser.wait_for(f"Number(document.querySelector(\"{bar}\").getAttribute('aria-valuenow'))"
                     f" > {before}", timeout=30)  # the page refreshes itself as the step runs
    assert browser.evaluate(ROWS)[:2] == ["c-held", "b-broken"]  # running, failed, ...
    held = browser.evaluate("document.querySelector(\"tr[data-name='c-held']\").innerText")
    assert "1/3 train" in held
    left = browser.evaluate(
        "document.querySelector(\"tr[data-name='c-held'] td.left\").textContent")
    assert left.endswith("s") and left != "-", left
    summary = browser.evaluate("document.getElementById('summary').innerText")
    assert "1 running" in summary and "1 failed" in summary and "all done in ~" in summary
    why = browser.evaluate(
        "document.querySelector(\"tr[data-name='b-broken'] .failure\").innerText")
    assert "deliberate failure" in why and "train" in why
    assert "ValueError: deliberate failure" in browser.evaluate(
        "document.querySelector(\"tr[data-name='b-broken'] .lastline\").textContent")
    # names are shown as text, never run as markup
    assert XSS_NAME in browser.evaluate(ROWS)
    assert browser.evaluate("typeof window.pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('#experiments img').length") == 0
    keep_screenshot(browser, tmp_path, "experiments-list")

    browser.evaluate("document.querySelector(\"#tabs [data-state='completed']\").click()")
    browser.wait_for(f"{ROWS}.length === 2 && {ROWS}.includes('a-done')")
    browser.evaluate("document.querySelector(\"#tabs [data-state='']\").click()")
    browser.wait_for(f"{ROWS}.length === 4")
    browser.type_into("#filter", "broken")
    browser.wait_for(f"JSON.stringify({ROWS}) === '[\"b-broken\"]'")
    assert "q=broken" in browser.evaluate("location.search")


@needs_chromium
def test_experiment_page_follows_the_running_steps_log(sweep, browser, tmp_path):
    browser.open(f"{sweep['url']}/experiments/c-held")
    log = "(document.querySelector('#log-train pre') || {}).textContent || ''"
    last = f"Math.max(0, ...[...({log}).matchAll(/line (\\d+) /g)].map(m => Number(m[1])))"
    first = browser.wait_for(last)
    browser.wait_for(f"{last} >= {first + 5}")  # new lines arrive while the step runs
    text = browser.evaluate(log)
    assert "<script>window.pwned = 1</script>" in text  # shown as written...
    assert browser.evaluate("typeof window.pwned") == "undefined"  # ...never run
    assert browser.evaluate("document.querySelectorAll('#logs script').length") == 0
    steps = browser.evaluate("[...document.querySelectorAll('#steps tbody tr')]"
                             ".map(r => r.dataset.step + ':' + r.dataset.state)")
    assert steps == ["prepare:done", "train:running", "eval:pending"] or steps == [
        "prepare:completed", "train:running", "eval:pending"]
    page = browser.evaluate("document.querySelector('main').innerText")
    assert "commit" in page and "dirty" in page and "go_flag" in page
    assert browser.evaluate("document.querySelector('#overview').innerText").count("left")
    keep_screenshot(browser, tmp_path, "experiment-page")


@needs_chromium
def test_diff_page_compares_two_runs(sweep, browser, tmp_path):
    browser.open(f"{sweep['url']}/experiments/a-done")
    link = browser.wait_for("document.querySelector('.siblings a')?.href")
    browser.open(link)
    text = browser.wait_for("document.querySelector('pre.diff')?.innerText")
    assert "outputDir" in text
    keep_screenshot(browser, tmp_path, "diff-page")


def test_pages_escape_names_and_answer_get_only(sweep):
    quoted = urllib.parse.quote(XSS_NAME, safe="")
    status, body = get(f"{sweep['url']}/experiments/{quoted}")
    assert status == 200
    assert b"&lt;img src=x onerror=window.pwned=1&gt;" in body
    assert b"<img" not in body
    request = urllib.request.Request(f"{sweep['url']}/experiments/api/status", data=b"{}",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
    assert state_of(sweep["ws"], "c-held") == "ConfigsInProgress"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A workspace whose queue is done (one completed, one failed), and its scheduler."""
    root = tmp_path_factory.mktemp("finished")
    tasks = make_code_repo(root / "project") / "tasks"
    ws = root / "ws"
    from orchestration.workspace import Workspace

    Workspace(ws).init()
    for name, steps in (("good", QUICK), ("bad", BROKEN), ("victim", QUICK)):
        write_config(ws, name, make_config(tasks, name, steps))
    assert run_cli("ready", ws=ws).returncode == 0
    assert run_cli("worker", "--exit-when-empty", ws=ws).returncode == 1
    with scheduler_cli(ws) as (url, _):
        yield {"url": url, "ws": ws, "root": root}


def test_api_status_is_status_json(finished):
    cli = run_cli("status", "--json", ws=finished["ws"])
    assert cli.returncode == 0, cli.stderr
    assert api_status(finished["url"]) == json.loads(cli.stdout)
    page = api_status(finished["url"], limit="1")
    assert page["matched"] == 3 and [e["name"] for e in page["experiments"]] == ["bad"]
    assert page["totals"] == json.loads(cli.stdout)["totals"]


def raw_get(url: str, path: str) -> int:
    """GET ``path`` exactly as written (no client normalises ``..`` away)."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


TRAVERSALS = [
    "/experiments/../../etc/passwd",
    "/experiments/..%2f..%2fetc%2fpasswd",
    "/experiments/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/experiments/%2E%2E",
    "/experiments/%2fetc%2fpasswd",
    "//experiments/%2fetc%2fpasswd",
    "/experiments/api/experiment/..%2fConfigsFailed%2fbad",
    "/experiments/api/log/good/..%2f..%2f..%2fetc%2fpasswd",
    "/experiments/api/log/good/%2e%2e",
    "/experiments/api/log/%2e%2e%2fgood/train",
    "/experiments/api/log/victim/linked",     # its log: a symlink to a file outside
    "/experiments/api/log/victim/absolute",   # its record names a log outside
    "/experiments/api/log/victim/not-a-step",
    "/experiments/diff/good?against=..%2f..%2fetc%2fpasswd",
    "/experiments/diff/good?against=%2fetc%2fpasswd",
    "/experiments/static/..%2f..%2fscheduler.py",
    "/experiments/static/%2e%2e%2fviews.py",
    "/experiments/static/templates%2flist.html",
    "/experiments/escaped",                   # its output link leads out of Output/
]


def test_paths_that_lead_out_of_the_workspace_answer_404(finished):
    ws, root = finished["ws"], finished["root"]
    secret = root / "secret.txt"
    secret.write_text("secret\n")
    out = ws / "Output" / "victim"
    record = json.loads((out / "run.json").read_text())
    for step, log in (("linked", out / "logs" / "linked.log"), ("absolute", secret)):
        record["tasks"][step] = {**record["tasks"]["train"], "id": step, "log": str(log)}
    (out / "run.json").write_text(json.dumps(record))
    (out / "logs" / "linked.log").symlink_to(secret)
    (ws / "ConfigsCompleted" / "escaped.yaml").write_text("tasks: []\n")
    (ws / "Misc" / "experiments" / "escaped").symlink_to(root)

    assert raw_get(finished["url"], "/experiments/api/log/victim/train") == 200
    assert {path: raw_get(finished["url"], path) for path in TRAVERSALS} == {
        path: 404 for path in TRAVERSALS}
