"""Printing results as a table (default), JSON or YAML; tables fit the terminal (:mod:`ferry_cli.tables`)."""

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import typer
import yaml
from rich.console import Console

from ferry_cli.tables import FittedTable


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = typer.Option("--output", "-o", help="table, json or yaml")

Column = tuple[str, Callable[[Any], object]]


def emit(data: Any, fmt: OutputFormat, columns: Sequence[Column] = (), title: str = "") -> None:
    """Print ``data`` (a list of rows or one object) in ``fmt``."""
    if fmt is OutputFormat.JSON:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if fmt is OutputFormat.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
        return
    Console().print(table_of(data if isinstance(data, list) else [data], columns, title))


def table_of(rows: Sequence[Any], columns: Sequence[Column], title: str = "") -> FittedTable:
    """``rows`` as a table of ``columns`` that fits the terminal (:class:`~ferry_cli.tables.FittedTable`)."""
    cells = [[_cell(getter(row)) for _, getter in columns] for row in rows]
    return FittedTable([header for header, _ in columns], cells, title)


def _cell(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)
