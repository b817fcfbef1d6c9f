"""``fuzzorch demo``: build the bundled example and run a campaign on its release branch."""

from __future__ import annotations

import typer

from orchestrator.adapters import make_git
from orchestrator.cli import run as run_cli
from orchestrator.cli.context import context_of
from orchestrator.cli.output import stderr
from orchestrator.demo import DEMO_BRANCH, build_example
from orchestrator.store.campaigns import FailOn


def demo(
    ctx: typer.Context,
    duration: float = typer.Option(60.0, "--duration", min=5, help="wall-clock seconds"),
    workers: int = typer.Option(0, "--workers", min=0, help="parallel jobs (0: CPU count)"),
) -> None:
    """Fuzz the example repository's release branch for about a minute; print the report."""
    context = context_of(ctx)
    context.require_embedded("demo")
    source = build_example(context.settings.home, make_git(context.settings, embedded=True))
    stderr.print(f"example repository: {source} (branch {DEMO_BRANCH})", markup=False)
    # The demo shows a found bug; its gate is informational, so it exits 0 when it ran.
    run_cli.run(
        ctx,
        source=str(source),
        branch=DEMO_BRANCH,
        duration=duration,
        workers=workers,
        json_path=context.settings.home / "demo-summary.json",
        fail_on=FailOn.NONE,
    )
