"""Run Luigi's central scheduler (``luigid``) for a workspace, safely by default, with the
experiments pages (``orchestration.web``) in the same tornado application: one process, one
port. One workspace has one scheduler: a second is refused, naming the first (a ``flock`` on
``Misc/luigid/scheduler.lock`` held for the life of the process).

luigid has no authentication, runs state-changing calls from plain GETs, and keeps its state
as a pickle it loads at start (whoever can write that file can run code as the scheduler).
So: bound to 127.0.0.1 unless asked otherwise, and then with a loud warning; state and logs
in ``Misc/luigid`` (``Misc`` is private, 0700), files created 0600, and a state file that
others could have written is refused. Task history stays off: it needs SQLAlchemy < 2 and
makes luigid about twice as slow, and our run records already keep every duration.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import ipaddress
import json
import logging
import os
import signal
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .exceptions import OrchestrationError, WorkspaceError
from .workspace import Workspace

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8082
PRUNE_MS = 60_000  # as luigid: drop finished and stale tasks from the graph every minute

_log = logging.getLogger("luigi.server")


@dataclass(frozen=True)
class SchedulerPaths:
    folder: Path
    state: Path
    logs: Path
    lock: Path  # held by the running scheduler; names its pid, host and port

    @classmethod
    def of(cls, ws: Workspace) -> "SchedulerPaths":
        folder = ws.misc / "luigid"
        return cls(folder, folder / "state.pickle", folder / "logs", folder / "scheduler.lock")


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


def hold(paths: SchedulerPaths, host: str, port: int) -> int:
    """Take the workspace's scheduler lock for the life of this process (the kernel drops
    it when the process ends, however it ends); returns the open descriptor.

    Two schedulers on one workspace would split the workers between two views of the
    queue and two ``resources`` limits, so the second is refused, naming the first."""
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder, url = _holder(fd)
        os.close(fd)
        raise WorkspaceError(
            f"another scheduler already serves the workspace {paths.folder.parent.parent}: "
            f"{holder}. Use that one (`job-orchestration worker --scheduler-url {url}`, pages "
            f"at {url}/experiments) or stop it first: one workspace has one scheduler."
        ) from None
    url = url_of(host, port)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "address": host, "port": port, "url": url,
                              "started": time.time()}).encode(), 0)
    return fd


def _holder(fd: int) -> tuple[str, str]:
    """Who holds the lock and their URL, from what they wrote into it (just after locking:
    a moment's wait covers a holder that is starting right now)."""
    for _ in range(20):
        try:
            info = json.loads(os.pread(fd, 4096, 0))
            return f"pid {info['pid']} on {info['host']}, port {info['port']}", info["url"]
        except (ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "a scheduler that is still starting (its pid is not written yet)", "URL"


def _shown(host: str) -> str:
    """The address to give others for ``host``: this machine's name for a wildcard."""
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host


def url_of(host: str, port: int) -> str:
    return f"http://{_shown(host)}:{port}"


def serve(ws: Workspace, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run Luigi's scheduler and the experiments pages in this process, on one port, until
    SIGTERM, SIGINT or SIGQUIT; the scheduler's state is saved then (as ``luigid`` does)."""
    import luigi.configuration
    from luigi.setup_logging import DaemonLogging

    paths = prepare(ws)
    os.umask(0o077)  # the state pickle and the logs: readable and writable by us only
    lock = hold(paths, host, port)
    try:
        config = luigi.configuration.get_config()
        config.set("scheduler", "record_task_history", "false")
        config.set("scheduler", "state_path", str(paths.state))
        DaemonLogging.setup(argparse.Namespace(background=False, logdir=str(paths.logs)))
        asyncio.run(_serve(ws, host, port, on_ready))
    finally:
        os.close(lock)  # only now: the next scheduler must load the state we just saved


async def _serve(ws: Workspace, host: str, port: int,
                 on_ready: Callable[[str], None] | None) -> None:
    """``luigi.server.run`` (3.8.1) with our pages added: load the state, serve, prune every
    minute, save the state at the end."""
    import luigi.scheduler
    import luigi.server
    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil

    from .web.handlers import install

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):  # before anyone can connect
        loop.add_signal_handler(sig, stop.set)
    scheduler = luigi.scheduler.Scheduler()
    scheduler.load()
    app = luigi.server.app(scheduler)
    site = install(app, ws)
    try:
        sockets = tornado.netutil.bind_sockets(port, address=host)
    except OSError as exc:
        site.close()
        raise OrchestrationError(f"cannot start luigid on {host}:{port}: {exc.strerror} "
                                 "(is another scheduler running? pick another --port)") from None
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    pruner = tornado.ioloop.PeriodicCallback(scheduler.prune, PRUNE_MS)
    pruner.start()
    _log.info("Scheduler starting up")
    try:
        if on_ready is not None:
            on_ready(url_of(host, port))
        await stop.wait()
    finally:
        _log.info("Scheduler instance shutting down")
        pruner.stop()
        server.stop()
        site.close()
        scheduler.dump()
