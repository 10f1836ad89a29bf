"""How fast are the experiments pages with a big workspace?

Builds a workspace of N experiments (default 10,000) cloned from three real runs (one
completed, one failed, one queued), starts ``job-orchestration scheduler`` (the real CLI)
and times, with the standard library:
  - ``collect()`` in-process and ``status --json`` as a user runs it;
  - ``/experiments/api/status`` (the whole ``status --json`` document) with its shared
    snapshot expired (cold) and fresh (warm), and one page of the list (100 rows), filtered
    by name and by state;
  - one experiment's page, its JSON and its log tail;
  - how long luigid's own API takes to answer while the pages compute a cold status (the
    pages share its process: they must not stall the workers' scheduler);
  - with Debian's chromium: from opening /experiments to its first rows drawn.

    python benchmarks/dashboard.py                # N = 10,000
    python benchmarks/dashboard.py --n 2000 --repeat 3
    python benchmarks/dashboard.py --keep /tmp/ws10k   # build once, measure again later
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from synthetic import clone_workspace  # first: it puts the checkout on sys.path

from orchestration.records.overview import collect  # noqa: E402
from orchestration.web.handlers import SNAPSHOT_DUTY, SNAPSHOT_SECONDS  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402
from tests.conftest import free_port, port_open, wait_until  # noqa: E402


def timed(fn, *args) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as reply:
        return reply.read()


def cold(url: str, repeat: int, collect_s: float) -> float:
    """Median time of ``url`` with the pages' shared status snapshot expired each time."""
    times = []
    for _ in range(repeat):
        expire(collect_s)
        times.append(timed(fetch, url)[0])
    return statistics.median(times)


def expire(collect_s: float) -> None:
    """Wait until the pages' shared status is old enough to be computed again."""
    time.sleep(max(SNAPSHOT_SECONDS, SNAPSHOT_DUTY * collect_s * 2) + 0.1)


def warm(url: str, repeat: int) -> float:
    fetch(url)
    return statistics.median(timed(fetch, url)[0] for _ in range(repeat))


def luigid_latency_during_status(url: str, collect_s: float) -> dict[str, float]:
    """luigid's ``task_list`` answer times while a cold status is computed beside it."""
    expire(collect_s)
    busy = threading.Thread(target=fetch, args=(f"{url}/experiments/api/status",))
    busy.start()
    times = []
    while busy.is_alive():
        times.append(timed(fetch, f"{url}/api/task_list?data=%7B%7D")[0])
    busy.join()
    idle = [timed(fetch, f"{url}/api/task_list?data=%7B%7D")[0] for _ in range(20)]
    return {"during_max_s": max(times), "during_median_s": statistics.median(times),
            "samples": len(times), "idle_median_s": statistics.median(idle)}


def first_rows_in_browser(url: str, profile: Path, collect_s: float) -> float | None:
    from tests.e2e.browser import Browser, chromium_binary

    if chromium_binary() is None:
        return None
    browser = Browser(profile)
    try:
        expire(collect_s)
        start = time.perf_counter()
        browser.open(f"{url}/experiments")
        browser.wait_for("document.querySelectorAll('#experiments tbody tr').length > 0",
                         timeout=120)
        return time.perf_counter() - start
    finally:
        browser.close()


def measure(root: Path, n: int, repeat: int) -> dict[str, object]:
    start = time.perf_counter()
    ws = Workspace(root / "ws") if (root / "ws").is_dir() else clone_workspace(root, n)
    result: dict[str, object] = {"n": n, "build_s": time.perf_counter() - start}
    result["collect_s"] = statistics.median(timed(collect, ws)[0] for _ in range(repeat))
    env = {**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws.root)}
    result["status_json_cli_s"] = timed(lambda: subprocess.run(
        [sys.executable, "-m", "orchestration", "status", "--json"], env=env,
        capture_output=True, check=True))[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "orchestration", "scheduler", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), 60, "the scheduler")
        api = f"{url}/experiments/api/status"
        body = fetch(api)
        assert len(json.loads(body)["experiments"]) == n
        result["api_status_bytes"] = len(body)
        result["api_status_cold_s"] = cold(api, repeat, result["collect_s"])
        result["api_status_warm_s"] = warm(api, repeat)
        result["page_cold_s"] = cold(f"{api}?limit=100", repeat, result["collect_s"])
        result["page_warm_s"] = warm(f"{api}?limit=100", repeat)
        result["page_filter_name_warm_s"] = warm(f"{api}?limit=100&q=done-0012", repeat)
        result["page_filter_failed_warm_s"] = warm(f"{api}?limit=100&state=failed", repeat)
        result["page_last_window_warm_s"] = warm(f"{api}?limit=100&offset={n - 100}", repeat)
        result["list_html_s"] = warm(f"{url}/experiments", repeat)
        result["experiment_page_s"] = warm(f"{url}/experiments/done-00042", repeat)
        result["experiment_json_s"] = warm(f"{url}/experiments/api/experiment/done-00042",
                                           repeat)
        result["log_tail_s"] = warm(f"{url}/experiments/api/log/bad-00042/s1", repeat)
        result["luigid_task_list"] = luigid_latency_during_status(url, result["collect_s"])
        result["browser_first_rows_s"] = first_rows_in_browser(url, root / "chromium",
                                                              result["collect_s"])
    finally:
        proc.terminate()
        proc.wait(30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the workspace in DIR and keep it; reuse it if it exists")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                        / "dashboard.json")
    args = parser.parse_args()
    if args.keep:
        result = measure(args.keep, args.n, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="jo-dash-") as tmp:
            result = measure(Path(tmp), args.n, args.repeat)
    for key, value in result.items():
        print(f"{key:>28}: {value:.3f}" if isinstance(value, float) else f"{key:>28}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
