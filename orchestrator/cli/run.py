"""``fuzzorch run``: one campaign end to end on the embedded service, then the report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from orchestrator.cli.context import CliContext, context_of
from orchestrator.cli.exitcodes import EXIT_GATE, EXIT_INFRA, EXIT_OK
from orchestrator.cli.output import out, stderr
from orchestrator.embedded import embedded_service
from orchestrator.errors import NotFoundError
from orchestrator.identity import new_id
from orchestrator.reports.build import write_report
from orchestrator.store import campaigns, crashes, leases
from orchestrator.store.campaigns import CampaignRecord, CampaignStatus, FailOn
from orchestrator.summary import gate_fails, harness_summaries
from workers.gitrefs import validate_ref
from workers.queue import FUZZ_QUEUE

TICK_S = 0.5


def run(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="registered repository name, git URL or local path"),
    branch: str = typer.Option(..., "--branch", help="the branch to fuzz (its head commit)"),
    duration: float = typer.Option(600.0, "--duration", min=5, help="wall-clock seconds"),
    workers: int = typer.Option(0, "--workers", min=0, help="parallel jobs (0: CPU count)"),
    json_path: Path | None = typer.Option(None, "--json", help="write the summary here"),
    fail_on: FailOn = typer.Option(FailOn.OPEN, "--fail-on", help="the release gate"),
    fail_on_flaky: bool = typer.Option(
        False, "--fail-on-flaky", help="flaky crash groups (reliability < 0.5) fail the gate too"
    ),
) -> None:
    """Fuzz a branch for a while, triage what crashed, write the report; exit per the gate."""
    context = context_of(ctx)
    context.require_embedded("run")
    workers = workers or os.cpu_count() or 1
    name, commit = _repository(context, source, validate_ref(branch))
    harnesses = context.registry().collection(name, commit).harnesses
    if not harnesses:
        raise NotFoundError(f"no harness in {name!r} at {branch}@{commit[:12]}")
    with context.database().transaction() as conn:
        campaign = campaigns.create_campaign(
            conn, campaign_id=new_id("cmp"), repo=name, branch=branch, commit=commit,
            duration_s=duration, workers=workers, fail_on=fail_on, now=time.time(),
            created_by="cli",
        )  # fmt: skip
    stderr.print(
        f"campaign {campaign.id}: {len(harnesses)} harnesses of {name} at {branch}@{commit[:12]}, "
        f"{duration:g} s x {workers} workers",
        markup=False,
    )
    finished = _fuzz(context, campaign, {h.name: h.kind.value for h in harnesses})
    document, failed = _finish(context, finished, fail_on_flaky=fail_on_flaky)
    if json_path is not None:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    for crash in document["crashes"]:
        out(f"{'NEW ' if crash['new'] else ''}{crash['status']}: {crash['title']}  [{crash['id']}]")
    if finished.status is not CampaignStatus.DONE:
        out(str(document["report"]))
        raise typer.Exit(EXIT_INFRA)
    out(str(document["report"]))
    raise typer.Exit(EXIT_GATE if failed else EXIT_OK)


def _repository(context: CliContext, source: str, branch: str) -> tuple[str, str]:
    name = context.find_or_register(source)
    return name, context.registry().resolve(name, branch)


def _fuzz(context: CliContext, campaign: CampaignRecord, kinds: dict[str, str]) -> CampaignRecord:
    database = context.database()
    with embedded_service(
        context.settings, database, context.objects(), context.registry(),
        workers=campaign.workers, clock=time.time,
    ) as dispatcher:  # fmt: skip
        dispatcher.start(campaign.id)
        try:
            with Live(console=stderr, refresh_per_second=2, transient=False) as live:
                while True:
                    dispatcher.tick()
                    with database.transaction() as conn:
                        current = campaigns.get_campaign(conn, campaign.id)
                        jobs = leases.campaign_jobs(conn, campaign.id)
                        seen = crashes.campaign_crashes(conn, campaign.id)
                    live.update(_progress(current, kinds, jobs, seen))
                    if current.status.finished:
                        return current
                    time.sleep(TICK_S)
        except KeyboardInterrupt:
            dispatcher.cancel(campaign.id)
            raise


def _progress(
    campaign: CampaignRecord,
    kinds: dict[str, str],
    jobs: list[leases.JobRecord],
    seen: list[crashes.CampaignCrash],
) -> Table:
    elapsed = time.time() - (campaign.started_at or time.time())
    left = max(0.0, campaign.duration_s - elapsed)
    grid = Table(title=f"{campaign.status.value}: {left:.0f} s left, {len(seen)} crash group(s)")
    for column in ("harness", "jobs", "execs", "coverage", "crashes", "status"):
        grid.add_column(column)
    for h in harness_summaries(kinds, jobs, seen):
        running = sum(
            1
            for j in jobs
            if j.queue == FUZZ_QUEUE and j.harness == h.name and j.state in leases.LIVE
        )
        grid.add_row(
            h.name, f"{running} running", f"{h.execs:,}", str(h.coverage), str(h.crashes),
            h.status,
        )  # fmt: skip
    return grid


def _finish(
    context: CliContext, campaign: CampaignRecord, *, fail_on_flaky: bool
) -> tuple[dict[str, Any], bool]:
    with context.database().transaction() as conn:
        seen = crashes.campaign_crashes(conn, campaign.id)
    folder = context.settings.home / "reports" / campaign.id
    index, document = write_report(
        context.database(), context.registry(), context.objects(), campaign.id, folder
    )
    document["report"] = str(index)
    return document, gate_fails(campaign.fail_on, seen, fail_on_flaky=fail_on_flaky)
