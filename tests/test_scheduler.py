"""``scheduler``: luigid for a workspace, on loopback, its state private under Misc/luigid;
one scheduler per workspace."""
from __future__ import annotations

import json
import os
import socket
import stat
import urllib.request

import pytest

from orchestration.exceptions import WorkspaceError
from orchestration.scheduler import SchedulerPaths, exposure_warning, prepare
from orchestration.workspace import Workspace
from tests.conftest import free_port, run_cli, scheduler_cli


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


def test_scheduler_serves_then_saves_its_state_privately(ws):
    with scheduler_cli(ws) as (url, proc):
        with urllib.request.urlopen(f"{url}/api/task_list?data=%7B%7D", timeout=10) as reply:
            assert json.load(reply)["response"] == {}
        with urllib.request.urlopen(f"{url}/experiments/api/status", timeout=10) as reply:
            assert json.load(reply)["experiments"] == []  # our pages, on luigid's own port
    assert proc.returncode == 0, proc.err
    assert f"{url}/experiments" in proc.out and "warning" not in proc.err
    paths = SchedulerPaths.of(Workspace(ws))
    assert stat.S_IMODE(paths.state.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.folder.stat().st_mode) == 0o700
    assert (paths.logs / "luigi-server.log").exists()


def test_a_second_scheduler_on_the_workspace_is_refused_naming_the_first(ws, tmp_path):
    with scheduler_cli(ws) as (url, first):
        port = url.rsplit(":", 1)[1]
        second = run_cli("scheduler", "--port", str(free_port()), ws=ws, timeout=60)
        assert second.returncode == 2, second.stderr
        assert second.stderr.startswith("error: another scheduler already serves")
        assert f"pid {first.pid} on {socket.gethostname()}, port {port}" in second.stderr
        assert f"--scheduler-url {url}" in second.stderr
        # another workspace on the same port: the port is the problem, and it says so
        other = tmp_path / "other"
        Workspace(other).init()
        third = run_cli("scheduler", "--port", port, ws=other, timeout=60)
        assert third.returncode == 2 and "another --port" in third.stderr, third.stderr
    assert first.returncode == 0, first.err
    with scheduler_cli(ws) as (_, again):  # the lock went with the process
        pass
    assert again.returncode == 0, again.err
