"""``fuzzorch db``: schema migrations of the SQL store."""

from __future__ import annotations

import typer

from orchestrator.cli.context import context_of
from orchestrator.cli.output import out
from orchestrator.store import migrate
from orchestrator.store.database import create_engine

app = typer.Typer(help="Manage the SQL store.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the schema this fuzzorch needs; print the revision."""
    settings = context_of(ctx).settings
    engine = create_engine(settings.database_url)
    try:
        revision = migrate.upgrade(engine)
    finally:
        engine.dispose()
    out(revision)
