"""``fuzzorch corpus``: libFuzzer-compatible corpus folders in and out of object storage."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.context import CliContext, context_of
from orchestrator.cli.output import out, out_json
from orchestrator.errors import NotFoundError
from workers.corpus import (
    DEFAULT_MAX_UNIT_BYTES,
    TransferStats,
    corpus_prefix,
    export_folder,
    import_folder,
)

app = typer.Typer(help="Move corpora between folders and object storage.", no_args_is_help=True)

HARNESS_OPTION = typer.Option(..., "--harness", help="harness name, as 'harness list' shows it")


def _prefix(context: CliContext, repo: str, harness: str) -> str:
    registry = context.registry()
    commit = registry.resolve(repo, None)
    names = registry.collection(repo, commit).names()
    if harness not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise NotFoundError(f"no harness {harness!r} in {repo!r} at its head (harnesses: {known})")
    return corpus_prefix(repo, harness)


def _report(action: str, stats: TransferStats, as_json: bool) -> None:
    if as_json:
        out_json({"added": stats.added, "present": stats.present, "skipped": stats.skipped})
    else:
        out(f"{action} {stats.added} new, {stats.present} already there, {stats.skipped} skipped")


@app.command("import")
def import_(
    ctx: typer.Context,
    repo: str,
    folder: Path = typer.Argument(..., help="folder of inputs, one file each"),
    harness: str = HARNESS_OPTION,
    max_unit_bytes: int = typer.Option(DEFAULT_MAX_UNIT_BYTES, "--max-unit-bytes", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a folder's inputs to a harness's corpus (deduplicated by content)."""
    context = context_of(ctx)
    context.require_embedded("corpus import")
    prefix = _prefix(context, repo, harness)
    if not folder.is_dir():
        raise NotFoundError(f"corpus folder {str(folder)!r} does not exist or is not a folder")
    stats = import_folder(context.objects(), prefix, folder, max_unit_bytes=max_unit_bytes)
    _report("imported", stats, as_json)


@app.command("export")
def export(
    ctx: typer.Context,
    repo: str,
    folder: Path = typer.Argument(..., help="folder to write <sha1>-named inputs into"),
    harness: str = HARNESS_OPTION,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write a harness's corpus into a folder, one file per input named by its sha1."""
    context = context_of(ctx)
    context.require_embedded("corpus export")
    prefix = _prefix(context, repo, harness)
    stats = export_folder(context.objects(), prefix, folder)
    _report("exported", stats, as_json)
