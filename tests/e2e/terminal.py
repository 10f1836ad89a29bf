"""Run the installed CLI on a pseudo-terminal of a given size, as a person at a terminal
runs it: ``rich`` sees a terminal (progress bars, live views, the screen's width and height)
and the test reads what it drew."""
from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Drawn:
    returncode: int
    raw: str  # with the escape sequences

    @property
    def text(self) -> str:
        """What was written, without colours and cursor moves, lines ending in ``\\n``."""
        return ANSI.sub("", self.raw).replace("\r\n", "\n")


def on_terminal(*args: str, ws: Path, rows: int = 24, cols: int = 80,
                interrupt_when: Callable[[str], bool] | None = None,
                timeout: float = 120) -> Drawn:
    """``python -m orchestration ARGS`` with stdout and stderr on a ``rows`` x ``cols``
    terminal; Ctrl-C (SIGINT to its process group) once ``interrupt_when(text so far)``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "JOB_ORCHESTRATION_WORKSPACE": str(ws), "TERM": "xterm-256color"}
    for variable in ("COLUMNS", "LINES", "NO_COLOR", "TERM_PROGRAM"):
        env.pop(variable, None)  # rich would believe these over the terminal
    proc = subprocess.Popen([sys.executable, "-m", "orchestration", *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    raw, interrupted = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program ended and closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
            if interrupt_when and not interrupted and interrupt_when(
                    ANSI.sub("", raw.decode(errors="replace"))):
                os.killpg(proc.pid, signal.SIGINT)
                interrupted = True
        else:
            proc.kill()
    finally:
        os.close(master)
    return Drawn(proc.wait(30), raw.decode(errors="replace"))
