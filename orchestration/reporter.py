"""All terminal output goes through here: plain lines, tables, errors.

``rich`` draws tables and colour when the output is a terminal and plain text when it is a
pipe or a file, so scripts and tests read the same words a person sees.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.table import Table


class Reporter:
    def __init__(self, out=None, err=None) -> None:  # noqa: ANN001 - file-like objects
        self.out = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=err or sys.stderr, highlight=False, soft_wrap=True)

    def line(self, text: str = "", style: str | None = None) -> None:
        self.out.print(text, style=style, markup=False)

    def warn(self, text: str) -> None:
        self.err.print(f"warning: {text}", style="yellow", markup=False)

    def error(self, text: str) -> None:
        self.err.print(f"error: {text}", style="red", markup=False)

    def json(self, data: Any) -> None:
        self.out.file.write(json.dumps(data, indent=2, default=str) + "\n")

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              title: str | None = None) -> None:
        table = Table(*columns, title=title, show_edge=False, header_style="bold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        self.out.print(table)


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
