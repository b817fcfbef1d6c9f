"""The ``fuzzorch`` command line: the composition root of the whole service."""

from orchestrator.cli.main import main

__all__ = ["entry", "main"]


def entry() -> None:
    """Console-script entry point: exit with main()'s code."""
    raise SystemExit(main())
