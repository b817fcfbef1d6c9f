"""CLI output: results on stdout, progress and errors on stderr (through rich)."""

from __future__ import annotations

from typing import NoReturn

import click
from rich.console import Console

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
    raise click.UsageError(message)
