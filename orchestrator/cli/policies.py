"""``fuzzorch repo secret`` and ``fuzzorch repo policy``: what a forge's push may start.

Both work on a server (``FUZZORCH_SERVER_URL``) or directly on the state the settings
point at (the embedded home, or a server's database with ``FUZZORCH_DATABASE_URL``).
"""

from __future__ import annotations

import typer

from orchestrator.cli.context import context_of
from orchestrator.cli.output import out, out_json, table
from orchestrator.errors import UsageError
from orchestrator.secretbox import SecretBox, new_webhook_secret
from orchestrator.store import policies, repos, webhooks
from orchestrator.store.campaigns import FailOn

policy_app = typer.Typer(help="Branch policies: pushes that start campaigns.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


def secret(ctx: typer.Context, repo: str) -> None:
    """Generate the repository's webhook secret and print it (only now: it is stored
    sealed with the server key). Configure it in the forge's webhook settings."""
    context = context_of(ctx)
    if not context.settings.embedded:
        out(context.client().new_secret(repo)["secret"])
        return
    key = context.settings.secret_key
    if key is None:
        raise UsageError("set FUZZORCH_SECRET_KEY (the server's key) to store webhook secrets")
    value = new_webhook_secret()
    with context.database().transaction() as conn:
        repos.get_repo(conn, repo)
        webhooks.set_secret(conn, repo, SecretBox(key).seal(value.encode(), context=repo),
                            now=context.now())  # fmt: skip
        context.audit(conn, "repo.secret", repo, {})
    out(value)


@policy_app.command("add")
def add(
    ctx: typer.Context,
    repo: str,
    branch: str = typer.Option(..., "--branch", help="branch glob, e.g. 'release/*'"),
    duration: float = typer.Option(600.0, "--duration", min=5, help="wall-clock seconds"),
    workers: int = typer.Option(2, "--workers", min=1, help="parallel jobs"),
    fail_on: FailOn = typer.Option(FailOn.OPEN, "--fail-on", help="the release gate"),
    priority: int = typer.Option(0, "--priority", min=0, max=100, help="share of a busy fleet"),
) -> None:
    """Start a campaign on every push to a branch matching the glob."""
    context = context_of(ctx)
    body = {"branch": branch, "duration": duration, "workers": workers,
            "fail_on": fail_on.value, "priority": priority}  # fmt: skip
    if not context.settings.embedded:
        answer = context.client().add_policy(repo, body)
    else:
        with context.database().transaction() as conn:
            repos.get_repo(conn, repo)
            answer = policies.add_policy(
                conn, repo=repo, branch_glob=branch, duration_s=duration, workers=workers,
                fail_on=fail_on, priority=priority, now=context.now(),
            ).to_json()  # fmt: skip
            context.audit(conn, "repo.policy.add", repo, body)
    out(f"{repo}: pushes to {answer['branch']} start {answer['duration']:g} s x "
        f"{answer['workers']} workers, gate {answer['fail_on']}")  # fmt: skip


@policy_app.command("list")
def list_(ctx: typer.Context, repo: str, as_json: bool = JSON_OPTION) -> None:
    """The repository's branch policies."""
    context = context_of(ctx)
    if not context.settings.embedded:
        found = context.client().policies(repo)
    else:
        with context.database().transaction() as conn:
            repos.get_repo(conn, repo)
            found = [p.to_json() for p in policies.list_policies(conn, repo)]
    if as_json:
        out_json(found)
        return
    table(
        None,
        ["branch", "duration", "workers", "fail on", "priority"],
        [[p["branch"], f"{p['duration']:g}", str(p["workers"]), p["fail_on"], str(p["priority"])]
         for p in found],
    )  # fmt: skip


@policy_app.command("remove")
def remove(
    ctx: typer.Context,
    repo: str,
    branch: str = typer.Option(..., "--branch", help="the glob of the policy to remove"),
) -> None:
    """Remove a branch policy."""
    context = context_of(ctx)
    if not context.settings.embedded:
        context.client().remove_policy(repo, branch)
    else:
        with context.database().transaction() as conn:
            policies.remove_policy(conn, repo, branch)
            context.audit(conn, "repo.policy.remove", repo, {"branch": branch})
    out(f"{repo}: removed the policy for {branch}")
