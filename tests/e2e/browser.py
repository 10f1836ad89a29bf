"""A headless Debian ``chromium`` driven over the DevTools protocol, for tests that must see
what a person sees (and click what a person clicks) in a real browser.

``--dump-dom`` only shows a page as it loads; the visualiser shows a status message only
after a click, so the test talks to the page over the DevTools websocket instead (tornado,
which Luigi already depends on, is the client).
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tornado.websocket import websocket_connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


def chromium_binary() -> str | None:
    return shutil.which("chromium")


async def _connect(url: str):  # noqa: ANN202 - tornado's WebSocketClientConnection
    return await websocket_connect(url, max_message_size=64 << 20)  # in the running loop


class Browser:
    """One page of a headless chromium; ``close()`` ends the browser."""

    def __init__(self, profile: Path, timeout: float = 30) -> None:
        self.proc = subprocess.Popen([chromium_binary(), *FLAGS, f"--user-data-dir={profile}",
                                      "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        try:
            port = self._devtools_port(profile / "DevToolsActivePort", timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            self.ws = self.loop.run_until_complete(_connect(page["webSocketDebuggerUrl"]))
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, path: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, **params: Any) -> dict:
        """One DevTools command; returns its result (events in between are skipped)."""
        return self.loop.run_until_complete(self._call(method, params))

    async def _call(self, method: str, params: dict) -> dict:
        msg_id = next(self.ids)
        await self.ws.write_message(json.dumps({"id": msg_id, "method": method,
                                                "params": params}))
        while True:
            raw = await asyncio.wait_for(self.ws.read_message(), 30)
            if raw is None:
                raise RuntimeError("the DevTools connection closed")
            reply = json.loads(raw)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} stayed {value!r} for {timeout} s")
            time.sleep(0.1)

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        """A PNG of the viewport (``full_page``: of the whole page, scrolled parts too)."""
        shot = self.call("Page.captureScreenshot", captureBeyondViewport=full_page)
        path.write_bytes(base64.b64decode(shot["data"]))

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as a keyboard would (input events fire)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.loop.close()
