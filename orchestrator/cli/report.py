"""``fuzzorch report CAMPAIGN --format html|json|md|sarif [--out PATH]``."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.context import context_of
from orchestrator.cli.output import out
from orchestrator.reports.build import ReportFormat, export, write_report


def report(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(..., help="the campaign's id"),
    fmt: ReportFormat = typer.Option(ReportFormat.HTML, "--format", help="html, json, md or sarif"),
    out_path: Path | None = typer.Option(
        None,
        "--out",
        help="html: a folder (default FUZZORCH_HOME/reports/<campaign>/); "
        "the others: a file (default stdout)",
    ),
) -> None:
    """Write a campaign's report: an HTML folder, or JSON, Markdown or SARIF."""
    context = context_of(ctx)
    context.require_embedded("report")
    if fmt is ReportFormat.HTML:
        folder = out_path or context.settings.home / "reports" / campaign_id
        index, _summary = write_report(
            context.database(), context.registry(), context.objects(), campaign_id, folder
        )
        out(str(index))
        return
    text = export(context.database(), context.registry(), campaign_id, fmt, report=None)
    if out_path is None:
        out(text.rstrip("\n"))
    else:
        out_path.write_text(text, encoding="utf-8")
        out(str(out_path))
