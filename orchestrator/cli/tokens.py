"""``fuzzorch token``: API tokens for the server and its CLI clients."""

from __future__ import annotations

import typer

from orchestrator.cli.context import context_of
from orchestrator.cli.output import bad_usage, out
from orchestrator.store import audit, tokens

app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help="viewer, triager or admin"),
    name: str = typer.Option("cli", "--name", help="what the token is for"),
) -> None:
    """Create a token and print it (only the token: it is not shown again)."""
    try:
        parsed = tokens.Role.parse(role)
    except ValueError as exc:
        bad_usage(str(exc))
    context = context_of(ctx)
    with context.database().transaction() as conn:
        try:
            record, secret = tokens.create_token(conn, role=parsed, name=name, now=context.now())
        except ValueError as exc:
            bad_usage(str(exc))
        audit.append(
            conn,
            audit.AuditEntry(
                actor="cli",
                action="token.create",
                at=context.now(),
                target=record.id,
                detail={"role": parsed.value, "name": name},
            ),
        )
    out(secret)
