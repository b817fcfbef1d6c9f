"""CLI output: results on stdout, progress and errors on stderr (through rich)."""

from __future__ import annotations

import json
from typing import NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.errors import UsageError

stdout = Console(soft_wrap=True, highlight=False)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)


def out(text: str) -> None:
    """Print a result line on stdout, verbatim (no markup: values may hold brackets)."""
    stdout.print(text, markup=False)


def error(message: str) -> None:
    """Print an error on stderr, verbatim."""
    stderr.print(f"error: {message}", markup=False, style="red")


def bad_usage(message: str) -> NoReturn:
    """Stop with exit code 2 and the message."""
    raise UsageError(message)


def out_json(value: object) -> None:
    """Print a JSON document on stdout."""
    stdout.print(json.dumps(value, indent=2, sort_keys=False), markup=False, soft_wrap=True)


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    """Print a table on stdout; cells are shown verbatim (no markup)."""
    grid = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))
    stdout.print(grid)
