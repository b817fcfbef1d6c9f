"""``fuzzorch server`` and ``fuzzorch worker``: the two long-running processes of a fleet."""

from __future__ import annotations

import typer

from orchestrator.cli.context import context_of
from orchestrator.errors import UsageError
from orchestrator.server.process import serve
from orchestrator.worker import run_worker


def server(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port to listen on"),
) -> None:
    """Serve the HTTP API and run the dispatcher, reconciler and ingest."""
    settings = context_of(ctx).settings
    if settings.broker_url == "memory://":
        raise UsageError(
            "a server needs a shared broker: set FUZZORCH_BROKER_URL=redis://HOST:6379/0 "
            "(memory:// only works inside one process: use 'fuzzorch run')"
        )
    serve(settings, host=host, port=port)


def worker(
    ctx: typer.Context,
    processes: int = typer.Option(1, "--processes", min=1, max=256, help="worker processes"),
    threads: int = typer.Option(1, "--threads", min=1, max=256, help="jobs per process"),
) -> None:
    """Run fuzz jobs from the broker (configured only by the environment)."""
    settings = context_of(ctx).settings
    if settings.broker_url == "memory://":
        raise UsageError("a worker needs a shared broker: set FUZZORCH_BROKER_URL=redis://…")
    run_worker(settings, processes=processes, threads=threads)
