"""Run Luigi's central scheduler (``luigid``) for a workspace, safely by default.

luigid has no authentication, runs state-changing calls from plain GETs, and keeps its state
as a pickle it loads at start (whoever can write that file can run code as the scheduler).
So: bound to 127.0.0.1 unless asked otherwise, and then with a loud warning; state and logs
in ``Misc/luigid`` (``Misc`` is private, 0700), files created 0600, and a state file that
others could have written is refused. Task history stays off: it needs SQLAlchemy < 2 and
makes luigid about twice as slow, and our run records already keep every duration.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .exceptions import OrchestrationError, WorkspaceError
from .workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8082


@dataclass(frozen=True)
class SchedulerPaths:
    folder: Path
    state: Path
    logs: Path

    @classmethod
    def of(cls, ws: Workspace) -> "SchedulerPaths":
        folder = ws.misc / "luigid"
        return cls(folder, folder / "state.pickle", folder / "logs")


def exposure_warning(host: str) -> str | None:
    """What a user must know before luigid listens on ``host``; None for loopback."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    return (f"luigid will listen on {host}: it has NO authentication and runs state-changing "
            "requests (mark as done, pause, disable workers) from plain GET links, so anyone "
            "who can reach this address, or any web page a browser on your network opens, can "
            "change it. Prefer the default 127.0.0.1 with an SSH tunnel, or put it behind a "
            "firewall or an authenticating reverse proxy.")


def prepare(ws: Workspace) -> SchedulerPaths:
    """Create ``Misc/luigid`` privately and check that the state file is safe to load."""
    paths = SchedulerPaths.of(ws)
    for folder in (ws.misc, paths.folder, paths.logs):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    try:
        info = paths.state.lstat()
    except FileNotFoundError:
        return paths
    if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise WorkspaceError(
            f"refusing to load the scheduler state {paths.state}: it is not a regular file "
            "of yours that only you can write, and luigid would run any code in it. If you "
            "trust its content: `chmod 600` it; otherwise delete it (luigid starts empty).")
    return paths


def luigid_argv(paths: SchedulerPaths, host: str, port: int) -> list[str]:
    return ["--address", host, "--port", str(port), "--state-path", str(paths.state),
            "--logdir", str(paths.logs)]


def serve(ws: Workspace, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run luigid in this process until SIGTERM or Ctrl-C (it saves its state then)."""
    import luigi.cmdline
    import luigi.configuration

    paths = prepare(ws)
    luigi.configuration.get_config().set("scheduler", "record_task_history", "false")
    os.umask(0o077)  # the state pickle and the logs: readable and writable by us only
    try:
        luigi.cmdline.luigid(luigid_argv(paths, host, port))
    except OSError as exc:
        raise OrchestrationError(f"cannot start luigid on {host}:{port}: {exc.strerror} "
                                 "(is another scheduler running? pick another --port)") from None
