"""All terminal output goes through here: plain lines, tables, errors.

``rich`` draws tables and colour when the output is a terminal and plain text when it is a
pipe or a file, so scripts and tests read the same words a person sees.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .fsutil import json_safe

_DIFF_STYLES = (("diff --git", "bold"), ("+++", "bold"), ("---", "bold"), ("@@", "cyan"),
                ("+", "green"), ("-", "red"))


PIPE_WIDTH = 1_000_000  # a table into a pipe or file is as wide as its widest row


def _console(file) -> Console:  # noqa: ANN001 - a file-like object
    """A console for ``file``. Into a pipe or file nothing is cut: rich fits tables to 80
    columns there (or $COLUMNS) with ``...`` in the cells, and a script or ``grep`` reading
    them needs every value whole; on a terminal tables fit its width."""
    # emoji=False: user data such as ``x[:100:]`` must print as written, not as an emoji
    console = Console(file=file, highlight=False, soft_wrap=True, emoji=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


class Reporter:
    def __init__(self, out=None, err=None) -> None:  # noqa: ANN001 - file-like objects
        self.out = _console(out or sys.stdout)
        self.err = _console(err or sys.stderr)

    def line(self, text: str = "", style: str | None = None) -> None:
        if self.out.is_terminal:
            self.out.print(text, style=style, markup=False)
        else:  # the same text; rich costs 0.1 ms a line (a submit of 1000 prints 1000 lines)
            self.out.file.write(text + "\n")
            self.out.file.flush()  # as rich does: in `2>&1` logs, lines stay in time order

    def event(self, text: str) -> None:
        """A line of a long-running command (``worker``, ``demo``), stamped with its time:
        such output ends up in logs read hours later."""
        self.line(f"{time.strftime('%H:%M:%S')} {text}")

    def warn(self, text: str) -> None:
        self.err.print(f"warning: {text}", style="yellow", markup=False)

    def error(self, text: str) -> None:
        self.err.print(f"error: {text}", style="red", markup=False)

    def json(self, data: Any) -> None:
        """Indented on a terminal; piped, one line (the C encoder: several times faster for
        the 10 MB of 10,000 experiments). Always valid JSON: a NaN or infinity (not JSON)
        is written as null."""
        indent = 2 if self.out.is_terminal else None
        try:
            text = json.dumps(data, indent=indent, default=str, allow_nan=False)
        except ValueError:
            text = json.dumps(json_safe(data), indent=indent, default=str)
        self.out.file.write(text + "\n")

    def raw(self, text: str) -> None:
        """Machine-readable text (CSV), written exactly as given."""
        self.out.file.write(text)

    def diff(self, text: str) -> None:
        """A unified diff: coloured by line on a terminal, byte-for-byte when piped."""
        if not self.out.is_terminal:
            self.raw(text)
            return
        for line in text.splitlines():
            style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), None)
            self.out.print(line, style=style, markup=False)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              title: str | None = None) -> None:
        self.out.print(render_table(columns, rows, title))

    def live(self) -> Live:
        """A view redrawn in place (``with reporter.live() as view: view.update(...)``). On a
        terminal its lines wrap at the screen's width: a redrawn view must know its height."""
        if self.out.is_terminal:
            self.out.soft_wrap = False
        return Live(console=self.out, auto_refresh=False, transient=False)


def render_table(columns: Sequence[str], rows: Iterable[Sequence[Any]],
                 title: str | None = None,
                 row_styles: Sequence[str | None] | None = None,
                 one_line: bool = False) -> Table:
    """A table as ``Reporter.table`` prints it, for views that compose or redraw it.
    ``one_line``: a cell too wide for its terminal is cut with ``...`` instead of wrapped
    (into a pipe nothing is cut either way)."""
    table = Table(*columns, title=title, show_edge=False, header_style="bold")
    for i, row in enumerate(rows):
        table.add_row(*(Text("" if v is None else str(v), no_wrap=one_line or None,
                             overflow="ellipsis" if one_line else None)  # no markup
                        for v in row), style=row_styles[i] if row_styles else None)
    return table


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``4.2s``: short enough for a table column."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
