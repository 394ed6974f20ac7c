"""Tables that stay readable on an 80-column terminal, and paths shown short.

A :class:`FittedTable` lays its columns out for the width it is rendered at: the first
column (the row's name), short columns and columns of single words (ids, URLs, paths:
breaking them helps no one) stay on one line; the others (messages, lists) wrap at spaces
and get at least :data:`WRAP_MIN` columns, taken from the widest one-line columns, which
then end in an ellipsis. Rich alone would squeeze the wrapping columns to a few characters.
"""

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

Cell = str | Text

SHORT_CELL = 16
"""A column none of whose cells is wider than this never wraps nor shrinks."""
WRAP_MIN = 20
"""A column that wraps gets at least this many characters when the line allows."""
GAP = 2
"""Spaces between two columns."""


class FittedTable:
    """A table of ``rows`` under ``headers``, laid out when rendered (see the module docstring)."""

    def __init__(self, headers: Sequence[str], rows: Iterable[Sequence[Cell]], title: str = "") -> None:
        self.headers = tuple(headers)
        self.rows = [tuple(row) for row in rows]
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        """The rich table for a line of ``width`` characters."""
        title = Text(self.title) if self.title else None
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                      collapse_padding=True)  # fmt: skip
        widths = self._natural()
        wraps = [self._wraps(index) for index in range(len(self.headers))]
        room = width - GAP * (len(self.headers) - 1)
        limits = _limits(widths, wraps, room)
        fixed = sum(limit for limit, wrap in zip(limits, wraps, strict=True) if not wrap)
        least = max(1, (room - fixed) // max(1, sum(wraps)))  # what each wrapping column can have at most
        for index, header in enumerate(self.headers):
            if wraps[index]:
                table.add_column(header, overflow="fold", min_width=min(widths[index], WRAP_MIN, least))
            else:
                table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=limits[index])
        for row in self.rows:  # a plain string is shown as it is, never read as rich markup
            table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
        return table

    def _cells(self, index: int) -> list[str]:
        return [str(row[index]) for row in self.rows]

    def _natural(self) -> list[int]:
        return [
            max([_width(header), *(_width(cell) for cell in self._cells(index))])
            for index, header in enumerate(self.headers)
        ]

    def _wraps(self, index: int) -> bool:
        cells = self._cells(index)
        widest = max((_width(cell) for cell in cells), default=0)
        return index > 0 and widest > SHORT_CELL and any(" " in line.strip() for c in cells for line in c.splitlines())


def _limits(widths: list[int], wraps: list[bool], room: int) -> list[int]:
    """Each column's width limit in ``room`` characters (gaps taken off): one-line columns are
    cut, widest first and none below SHORT_CELL, until each wrapping column has WRAP_MIN (or
    its natural width if smaller)."""
    limits = list(widths)
    wanted = sum(min(w, WRAP_MIN) for w, wrap in zip(widths, wraps, strict=True) if wrap)
    floors = [w if wrap else min(w, SHORT_CELL) for w, wrap in zip(widths, wraps, strict=True)]
    while True:
        fixed = sum(limit for limit, wrap in zip(limits, wraps, strict=True) if not wrap)
        excess = fixed + wanted - room
        cuttable = [i for i, wrap in enumerate(wraps) if not wrap and limits[i] > floors[i]]
        if excess <= 0 or not cuttable:
            break
        widest = max(cuttable, key=lambda i: limits[i])
        limits[widest] = max(floors[widest], limits[widest] - excess)
    return limits


def _width(cell: Cell) -> int:
    return max((cell_len(line) for line in str(cell).splitlines()), default=0)


def short_path(path: str | Path, root: str | Path | None = None) -> str:
    """``path`` relative to ``root`` (or else the working directory) when inside it, or else
    with ``~`` for the home directory; a path that is not absolute is returned as it is."""
    text = str(path)
    if not os.path.isabs(text):
        return text
    full = Path(text)
    for base in (Path(root) if root is not None else None, Path.cwd()):
        if base is not None and full.is_relative_to(base) and full != base:
            return str(full.relative_to(base))
    home = Path.home()
    if full.is_relative_to(home) and full != home:
        return f"~/{full.relative_to(home)}"
    return text
