"""``scheduler``: luigid for a workspace, on loopback, its state private under Misc/luigid."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.request

import pytest

from orchestration.exceptions import WorkspaceError
from orchestration.scheduler import SchedulerPaths, exposure_warning, prepare
from orchestration.workspace import Workspace
from tests.conftest import free_port, port_open, run_cli, wait_until


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_warning(host):
    assert exposure_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "scheduler.example.org"])
def test_any_other_address_gets_a_loud_warning(host):
    warning = exposure_warning(host)
    assert "NO authentication" in warning and "GET" in warning and host in warning


def test_a_state_file_others_could_write_is_refused(ws):
    workspace = Workspace(ws)
    paths = prepare(workspace)
    assert stat.S_IMODE(paths.folder.stat().st_mode) == 0o700
    paths.state.write_bytes(b"not a pickle")
    os.chmod(paths.state, 0o664)
    with pytest.raises(WorkspaceError, match="refusing to load"):
        prepare(workspace)
    os.chmod(paths.state, 0o600)
    assert prepare(workspace) == paths


def scheduler(ws, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestration", "scheduler", "--port",
                             str(port)], env={**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_scheduler_serves_then_saves_its_state_privately(ws):
    port = free_port()
    proc = scheduler(ws, port)
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, 30, "luigid")
        assert proc.poll() is None, proc.communicate()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D",
                                    timeout=10) as reply:
            assert json.load(reply)["response"] == {}
        second = run_cli("scheduler", "--port", str(port), ws=ws, timeout=60)
        assert second.returncode == 2 and "another --port" in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out and "warning" not in err
    paths = SchedulerPaths.of(Workspace(ws))
    assert stat.S_IMODE(paths.state.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.folder.stat().st_mode) == 0o700
    assert (paths.logs / "luigi-server.log").exists()
