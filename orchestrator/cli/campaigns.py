"""``fuzzorch campaign``: start, list, show, wait for and cancel campaigns on a server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from orchestrator.cli.context import context_of
from orchestrator.cli.exitcodes import EXIT_GATE, EXIT_INFRA, EXIT_OK
from orchestrator.cli.output import out, out_json, stderr, table
from orchestrator.store.campaigns import FailOn
from orchestrator.summary import crash_gate_fails

app = typer.Typer(help="Campaigns on a fuzzorch server.", no_args_is_help=True)


@app.command("start")
def start(
    ctx: typer.Context,
    repo: str = typer.Argument(..., help="registered repository name"),
    branch: str = typer.Option(..., "--branch"),
    duration: float = typer.Option(600.0, "--duration", min=5),
    workers: int = typer.Option(2, "--workers", min=1),
    fail_on: FailOn = typer.Option(FailOn.OPEN, "--fail-on"),
    priority: int = typer.Option(0, "--priority", min=0, max=100),
) -> None:
    """Start a campaign on the head of a branch; print only its id."""
    client = context_of(ctx).client()
    answer = client.start_campaign(
        {"repo": repo, "branch": branch, "duration": duration, "workers": workers,
         "fail_on": fail_on.value, "priority": priority}
    )  # fmt: skip
    out(str(answer["id"]))


@app.command("list")
def list_(
    ctx: typer.Context,
    repo: str | None = typer.Option(None, "--repo"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Campaigns, newest first."""
    found = context_of(ctx).client().list_campaigns(repo)
    if as_json:
        out_json(found)
        return
    table(None, ["id", "repo", "branch", "commit", "status", "created"],
          [[c["id"], c["repo"], c["branch"], c["commit"][:12], c["status"], c["created_at"]]
           for c in found])  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, campaign_id: str) -> None:
    """A campaign's summary as it stands now (JSON)."""
    out_json(context_of(ctx).client().campaign(campaign_id)["summary"])


@app.command("wait")
def wait(
    ctx: typer.Context,
    campaign_id: str,
    json_path: Path | None = typer.Option(None, "--json", help="write the summary here"),
    timeout: float = typer.Option(0.0, "--timeout", min=0, help="give up after (0: never)"),
    poll: float = typer.Option(2.0, "--poll", min=0.2, help="seconds between checks"),
    fail_on_flaky: bool = typer.Option(
        False, "--fail-on-flaky", help="flaky crash groups (reliability < 0.5) fail the gate too"
    ),
) -> None:
    """Wait until a campaign ends; write its summary; exit per its gate (0/1, 3 if failed)."""
    client = context_of(ctx).client()
    started = time.monotonic()
    while True:
        answer: dict[str, Any] = client.campaign(campaign_id)
        if answer["finished"]:
            break
        if timeout and time.monotonic() - started > timeout:
            stderr.print(f"campaign {campaign_id} still running after {timeout:g} s", markup=False)
            raise typer.Exit(EXIT_INFRA)
        time.sleep(poll)
    document = answer["summary"]
    if json_path is not None:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    for crash in document["crashes"]:
        out(f"{'NEW ' if crash['new'] else ''}{crash['status']}: {crash['title']}  [{crash['id']}]")
    if document["campaign"]["status"] != "done":
        raise typer.Exit(EXIT_INFRA)
    failed = crash_gate_fails(
        FailOn(answer["fail_on"]), document["crashes"], fail_on_flaky=fail_on_flaky
    )
    raise typer.Exit(EXIT_GATE if failed else EXIT_OK)


@app.command("cancel")
def cancel(ctx: typer.Context, campaign_id: str) -> None:
    """Cancel a campaign and its unfinished jobs."""
    answer = context_of(ctx).client().cancel(campaign_id)
    out("cancelled" if answer["cancelled"] else "already finished")
