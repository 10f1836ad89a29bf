"""The experiments pages as tornado handlers, added to Luigi's own web application.

Routes (an experiment's page is always exactly one path segment, so any name works,
``api`` and ``static`` included):

- ``/experiments``: the list; ``/experiments/NAME``: one experiment;
  ``/experiments/diff/NAME?against=OTHER``: two runs compared.
- ``/experiments/api/status``: ``status --json`` (with ``q``, ``state``, ``offset`` or
  ``limit``: one filtered window of it, as the list page shows);
  ``/experiments/api/experiment/NAME``; ``/experiments/api/log/NAME/STEP?offset=N``.
- ``/experiments/static/FILE``: the pages' own CSS and JavaScript (nothing external).

The scheduler's event loop also answers every worker, so reading records and logs runs in
a small thread pool, and the status of the workspace is computed once for every page
watching it (``Snapshot``).
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, TypeVar

import tornado.web

from .. import __version__
from ..exceptions import WorkspaceError
from ..records.overview import collect
from ..slurm.jobs import status_part
from ..workspace import Workspace
from . import confine, views

T = TypeVar("T")
PAGES = resources.files(__package__)
ASSETS = {"dashboard.css": "text/css", "list.js": "text/javascript",
          "experiment.js": "text/javascript", "common.js": "text/javascript"}
SECURITY_HEADERS = {
    # our own files only: no inline script, nothing from elsewhere, no framing
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SNAPSHOT_SECONDS = 1.0  # pages refresh every 2 s; one status serves all of them meanwhile
SNAPSHOT_DUTY = 4  # a status taking t s is kept >= 4t s: watching never takes > 1/4 of a core
SLURM_SECONDS = 30.0  # as `status --watch`: polling squeue floods the Slurm controller


class Snapshot:
    """The workspace's ``status --json``, shared by every page that asks: computed at most
    once per ``fresh_for`` seconds however many pages watch, and never twice at once."""

    def __init__(self, ws: Workspace, run: Callable[..., "asyncio.Future[Any]"]) -> None:
        self.ws, self._run = ws, run
        self._future: asyncio.Future | None = None
        self._started = 0.0
        self._took = 0.0
        self._rows: dict[str, dict] = {}
        self._body: tuple[dict, asyncio.Future] | None = None  # (a status, its JSON)
        self._slurm: dict[str, Any] | None = None
        self._slurm_asked = float("-inf")

    @property
    def fresh_for(self) -> float:
        return max(SNAPSHOT_SECONDS, SNAPSHOT_DUTY * self._took)

    async def get(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._future is None or (self._future.done()
                                    and now - self._started >= self.fresh_for):
            self._started = now
            self._future = asyncio.ensure_future(self._run(self._collect))
        return await asyncio.shield(self._future)

    def _collect(self) -> dict[str, Any]:
        start = time.monotonic()
        status = collect(self.ws).as_json()
        if start - self._slurm_asked > SLURM_SECONDS:  # squeue is asked seldom (its controller
            self._slurm, self._slurm_asked = status_part(self.ws), start  # is shared)
        if self._slurm is not None:
            status["slurm"] = self._slurm
        self._rows = {row["name"]: row for row in status["experiments"]}
        self._took = time.monotonic() - start
        return status

    async def row(self, name: str) -> dict[str, Any] | None:
        await self.get()
        return self._rows.get(name)

    async def body(self) -> bytes:
        """The status as ``status --json`` prints it, encoded once per snapshot (12 MB for
        10,000 experiments takes 0.4 s to encode)."""
        status = await self.get()
        if self._body is None or self._body[0] is not status:
            self._body = (status, asyncio.ensure_future(self._run(_encode, status)))
        return await asyncio.shield(self._body[1])


def _encode(data: Any) -> bytes:
    """``json.dumps(data, default=str)``, byte for byte, but a top-level list is encoded one
    item at a time: the C encoder holds the GIL throughout, and the scheduler's event loop in
    the main thread would wait for all 12 MB of a 10,000-experiment status (0.4 s)."""
    if not isinstance(data, dict):
        return json.dumps(data, default=str).encode()
    parts = []
    for key, value in data.items():
        encoded = ("[" + ", ".join(json.dumps(v, default=str) for v in value) + "]"
                   if isinstance(value, list) else json.dumps(value, default=str))
        parts.append(f"{json.dumps(str(key))}: {encoded}")
    return ("{" + ", ".join(parts) + "}").encode()


@dataclass
class Site:
    """What every handler shares: the workspace, the thread pool, the status snapshot."""

    ws: Workspace
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="experiments-page"))
    snapshot: Snapshot = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = Snapshot(self.ws, self.run)

    def run(self, fn: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Handler(tornado.web.RequestHandler):
    """GET only; unknown or refused names answer 404, whatever the reason."""

    def initialize(self, site: Site) -> None:
        self.site = site

    def set_default_headers(self) -> None:
        for key, value in SECURITY_HEADERS.items():
            self.set_header(key, value)

    def get_template_path(self) -> str:
        return str(PAGES / "templates")

    def render_page(self, template: str, **kwargs: Any) -> None:
        self.render(template, version=__version__, workspace=str(self.site.ws.root), **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the thread pool; a refused or unknown name is a 404."""
        try:
            return await self.site.run(fn, *args)
        except (confine.NotFound, WorkspaceError):
            raise tornado.web.HTTPError(404) from None

    def write_json(self, data: Any) -> None:
        """``data`` as JSON (bytes: already encoded)."""
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(data if isinstance(data, bytes) else _encode(data))


class ListPage(_Handler):
    def get(self) -> None:
        self.render_page("list.html")


class ExperimentPage(_Handler):
    async def get(self, raw: str) -> None:
        info = await self.read(views.experiment, self.site.ws, raw, None, time.time())
        others = await self.read(views.siblings, self.site.ws, info["name"],
                                 info.get("output_dir"))
        self.render_page("experiment.html", e=info, siblings=others)


class DiffPage(_Handler):
    async def get(self, raw: str) -> None:
        against = self.get_query_argument("against", "")
        a, b, found = await self.read(views.comparison, self.site.ws, raw, against)
        self.render_page("diff.html", a=a, b=b, diff=found)


class StatusApi(_Handler):
    async def get(self) -> None:
        if not any(self.get_query_argument(p, None) is not None
                   for p in views.Query.PARAMETERS):
            self.write_json(await self.site.snapshot.body())  # what `status --json` prints
            return
        status = await self.site.snapshot.get()
        try:
            query = views.Query.parse(lambda p: self.get_query_argument(p, None))
        except views.BadQuery as exc:
            raise tornado.web.HTTPError(400, reason=str(exc)) from None
        self.write_json(await self.read(views.page, self.site.ws, status, query, time.time()))


class ExperimentApi(_Handler):
    async def get(self, raw: str) -> None:
        row = await self.site.snapshot.row(raw)
        self.write_json(await self.read(views.experiment, self.site.ws, raw, row, time.time()))


class LogApi(_Handler):
    async def get(self, raw: str, step: str) -> None:
        offset = self.get_query_argument("offset", None)
        if offset is not None and not offset.isdigit():
            raise tornado.web.HTTPError(400, reason="offset must be a whole number")
        self.write_json(await self.read(views.log_chunk, self.site.ws, raw, step,
                                        None if offset is None else int(offset)))


class Asset(_Handler):
    def get(self, name: str) -> None:
        if name not in ASSETS:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", f"{ASSETS[name]}; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish((PAGES / "static" / name).read_bytes())


def routes(site: Site) -> list[tuple[str, type, dict]]:
    args = {"site": site}
    return [(r"/experiments/?", ListPage, args),
            (r"/experiments/api/status", StatusApi, args),
            (r"/experiments/api/experiment/([^/]+)", ExperimentApi, args),
            (r"/experiments/api/log/([^/]+)/([^/]+)", LogApi, args),
            (r"/experiments/static/([^/]+)", Asset, args),
            (r"/experiments/diff/([^/]+)", DiffPage, args),
            (r"/experiments/([^/]+)", ExperimentPage, args)]


def install(app: tornado.web.Application, ws: Workspace) -> Site:
    """Add the experiments pages to Luigi's application (its own routes are untouched)."""
    site = Site(ws)
    app.add_handlers(r".*", routes(site))
    return site
