"""``fuzzorch repo`` and ``fuzzorch harness``: registering repositories, listing harnesses."""

from __future__ import annotations

import datetime as dt

import typer

from harnesses.model import Collection
from orchestrator.cli.context import context_of
from orchestrator.cli.output import out, out_json, table
from orchestrator.store import repos
from orchestrator.views import collection_json, repo_json

app = typer.Typer(help="Register and inspect repositories.", no_args_is_help=True)
harness_app = typer.Typer(help="List the harnesses of a repository.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


@app.command("add")
def add(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="https/ssh URL or local path of a git repository"),
    name: str | None = typer.Option(None, "--name", help="slug (default: from the source)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Mirror a repository and discover its harnesses at the default branch's head."""
    context = context_of(ctx)
    if not context.settings.embedded:
        answer = context.client().add_repo(source, name)
        if as_json:
            out_json(answer)
        else:
            out(f"{answer['name']}: {len(answer['harnesses'])} harnesses, "
                f"{len(answer['skipped'])} skipped at {answer['default_branch']}")  # fmt: skip
        return
    registration = context.registry().add(source, name=name)
    record, collection = registration.repo, registration.collection
    if as_json:
        out_json(
            {
                **repo_json(record),
                **collection_json(collection, include_skipped=True),
                "seeds": {"added": registration.seeds.added, "present": registration.seeds.present},
            }
        )
        return
    out(
        f"{record.name}: {len(collection.harnesses)} harnesses, {len(collection.skipped)} skipped "
        f"at {record.default_branch}@{(record.head_commit or '')[:12]}"
        f" ({registration.seeds.added} seed inputs imported)"
    )


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Every registered repository."""
    context = context_of(ctx)
    context.require_embedded("repo list")
    with context.database().transaction() as conn:
        records = repos.list_repos(conn)
    if as_json:
        out_json([repo_json(r) for r in records])
        return
    table(
        None,
        ["name", "source", "default branch", "head", "updated"],
        [
            [
                r.name,
                r.source,
                r.default_branch or "",
                (r.head_commit or "")[:12],
                _when(r.updated_at),
            ]
            for r in records
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, as_json: bool = JSON_OPTION) -> None:
    """One repository, with the harnesses at its head."""
    context = context_of(ctx)
    context.require_embedded("repo show")
    with context.database().transaction() as conn:
        record = repos.get_repo(conn, name)
    collection = (
        context.registry().collection(name, record.head_commit)
        if record.head_commit
        else Collection((), ())
    )
    if as_json:
        out_json({**repo_json(record), **collection_json(collection, include_skipped=True)})
        return
    out(f"{record.name}  {record.source}")
    out(f"default branch {record.default_branch} at {record.head_commit}")
    _harness_table(collection, include_skipped=True)


@harness_app.command("list")
def harness_list(
    ctx: typer.Context,
    repo: str,
    ref: str | None = typer.Option(None, "--ref", help="branch, tag or commit (default: head)"),
    include_skipped: bool = typer.Option(
        False, "--all", help="also list skipped files with their reasons"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The harnesses of a repository at a ref."""
    context = context_of(ctx)
    context.require_embedded("harness list")
    registry = context.registry()
    commit = registry.resolve(repo, ref)
    collection = registry.collection(repo, commit)
    if as_json:
        out_json({"repo": repo, "commit": commit, **collection_json(collection, include_skipped)})
        return
    _harness_table(collection, include_skipped=include_skipped)


def _harness_table(collection: Collection, *, include_skipped: bool) -> None:
    rows = [[h.name, h.kind.value, "found", ""] for h in collection.harnesses]
    if include_skipped:
        rows += [[s.name, "", f"skipped: {s.reason.value}", s.detail] for s in collection.skipped]
    table(None, ["harness", "kind", "status", "detail"], sorted(rows))


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")
