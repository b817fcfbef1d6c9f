"""``fuzzorch crash``: list, show, reproduce, merge, split and set the status of crash groups."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from harnesses.identity import harness_id
from harnesses.model import Harness
from harnesses.pytraceback import plain_text
from orchestrator.cli.context import CliContext, context_of
from orchestrator.cli.exitcodes import EXIT_GATE, EXIT_OK
from orchestrator.cli.output import out, out_json, stderr, table
from orchestrator.errors import NotFoundError, UsageError
from orchestrator.identity import new_id
from orchestrator.regression import default_test_path, regression_test
from orchestrator.store import grouping
from orchestrator.store import triage as triage_store
from orchestrator.store.repos import get_repo
from workers.crashes import MAX_TESTCASE_BYTES
from workers.envcache import BuildFailure
from workers.gitrefs import validate_ref
from workers.reproduce import Reproducer, RunState, Unrunnable
from workers.triage_contract import TriageSpec, TriageTask

app = typer.Typer(help="Inspect and triage crash groups.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of text")


@app.command("list")
def list_(
    ctx: typer.Context,
    repo: str | None = typer.Option(None, "--repo", help="only this repository's groups"),
    status: str | None = typer.Option(None, "--status", help="only groups with this status"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Crash groups, newest first."""
    context = context_of(ctx)
    if not context.settings.embedded:
        filters = {k: v for k, v in (("repo", repo), ("status", status)) if v is not None}
        found: list[dict[str, Any]] = context.client().crashes(filters)
    else:
        with context.database().transaction() as conn:
            rows = grouping.list_groups(conn, repo=repo, status=status)
        found = [{"id": r.id, "repo": r.repo, "title": r.title, "status": r.status,
                  "reliability": r.reliability, "harness": r.harness} for r in rows]  # fmt: skip
    if as_json:
        out_json(found)
        return
    table(
        None,
        ["id", "repo", "status", "reliability", "title"],
        [[g["id"], g["repo"], g["status"], _reliability(g["reliability"]), g["title"]]
         for g in found],
    )  # fmt: skip


@app.command("show")
def show(ctx: typer.Context, group_id: str, as_json: bool = JSON_OPTION) -> None:
    """Everything known about one crash group: triage, per-branch status, sightings."""
    context = context_of(ctx)
    if not context.settings.embedded:
        detail = context.client().crash(group_id)
    else:
        with context.database().transaction() as conn:
            detail = grouping.group_detail(conn, group_id)
    if as_json:
        out_json(detail)
        return
    _print_detail(detail)


@app.command("merge")
def merge(
    ctx: typer.Context,
    sources: list[str] = typer.Argument(..., help="groups that are duplicates"),
    into: str = typer.Option(..., "--into", help="the group they duplicate"),
) -> None:
    """Mark groups as duplicates of another (they stop gating; the target carries the bug)."""
    context = context_of(ctx)
    if not context.settings.embedded:
        merged = context.client().merge(into, sources)["merged"]
    else:
        with context.database().transaction() as conn:
            merged = grouping.merge(conn, sources, into)
            context.audit(conn, "crash.merge", into, {"duplicates": merged})
    out(f"merged {', '.join(merged)} into {into}")


@app.command("split")
def split(ctx: typer.Context, group_id: str) -> None:
    """Undo a merge: the group stands on its own again."""
    context = context_of(ctx)
    if not context.settings.embedded:
        left = context.client().split(group_id)["split_from"]
    else:
        with context.database().transaction() as conn:
            left = grouping.split(conn, group_id)
            context.audit(conn, "crash.split", group_id, {"from": left})
    out(f"split {group_id} from {left}")


@app.command("status")
def status(
    ctx: typer.Context,
    group_id: str,
    value: str = typer.Argument(..., help="wontfix, or open to undo it"),
) -> None:
    """Set a group's status by hand (wontfix stops it from gating)."""
    context = context_of(ctx)
    if not context.settings.embedded:
        current = context.client().crash_status(group_id, value)["status"]
    else:
        with context.database().transaction() as conn:
            grouping.set_status(conn, group_id, value)
            current = grouping.get_group(conn, group_id).status
            context.audit(conn, "crash.status", group_id, {"status": current})
    out(f"{group_id}: {current}")


@app.command("reproduce")
def reproduce(
    ctx: typer.Context,
    group_id: str,
    commit: str | None = typer.Option(
        None, "--commit", help="ref to run at (default: where it crashed)"
    ),
    minimized: bool = typer.Option(False, "--minimized", help="run the minimized testcase"),
) -> None:
    """Run a group's testcase once, sandboxed; exit 1 if it crashes the group's way."""
    context = context_of(ctx)
    context.require_embedded("crash reproduce")
    spec, data = _reproduction(context, group_id, commit, minimized=minimized)
    caches = context.worker_caches()
    run_dir = caches.root / "reproduce" / spec.job_id
    try:
        repro = Reproducer(spec, caches, run_dir)
        testcase = repro.add_input("testcase", data)
        with repro.at(spec.commit) as target:
            if isinstance(target, BuildFailure):
                raise UsageError(
                    f"the environment at {spec.commit[:12]} cannot be built: {target.reason}"
                )
            if isinstance(target, Unrunnable):
                raise UsageError(f"cannot run at {spec.commit[:12]}: {target.reason}")
            if minimized and spec.kind.value == "hypothesis":
                attempt = repro.replay_choices(target, testcase)
            else:
                attempt = repro.run(target, testcase)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    # The harness's output is hostile bytes: no terminal escapes reach the user's terminal.
    lines = attempt.output[-20_000:].splitlines()
    stderr.print("\n".join(plain_text(line, 2000) for line in lines), markup=False, highlight=False)
    if attempt.state is RunState.NO_START:
        raise UsageError(f"the harness could not start at {spec.commit[:12]}")
    same = attempt.matches(spec.signature)
    if same:
        verdict = "reproduced"
    elif attempt.state is RunState.CLEAN:
        verdict = "did not crash"
    else:
        verdict = "crashed another way"
    out(f"{verdict} at {spec.commit[:12]}")
    raise typer.Exit(EXIT_GATE if attempt.state is RunState.CRASHED else EXIT_OK)


@app.command("export-test")
def export_test(
    ctx: typer.Context,
    group_id: str,
    out_path: Path | None = typer.Option(
        None,
        "--out",
        help="file to write (default: tests/fuzzorch/test_crash_<id>.py; - for stdout)",
    ),
) -> None:
    """Write a pytest regression test that fails while the crash reproduces: it replays the
    (minimized) testcase through the atheris harness, or the falsifying example through the
    Hypothesis test, so the ordinary test run catches the bug coming back."""
    context = context_of(ctx)
    context.require_embedded("crash export-test")
    with context.database().transaction() as conn:
        row = grouping.get_group(conn, group_id)
        group = triage_store.group_triage(conn, row.id)
        first = triage_store.first_testcase(
            conn, group_id, prefix=f"crashes/{group.repo}/{harness_id(group.harness)}/"
        )
        anchor = group.crash_commit or triage_store.first_commit(conn, group_id)
    if row.kind not in ("exception", "exit"):
        raise UsageError(
            f"crash group {group_id!r} is a {row.kind}: a unit test cannot catch it coming "
            "back (it would hang or end the test run); reproduce it with 'crash reproduce'"
        )
    harness = _harness(context.registry().collection(group.repo, anchor).harnesses, group.harness)
    # A Hypothesis group's minimized testcase is an example-database entry, which
    # fuzz_one_input cannot replay: the original buffer is the fallback there.
    atheris = harness.kind.value == "atheris"
    key = group.minimized_key if atheris and group.minimized_key else first
    if key is None:
        raise NotFoundError(f"crash group {group_id!r} has no testcase of {group.harness!r}")
    source = regression_test(
        kind=harness.kind, harness=harness.name, path=harness.path,
        testcase=context.objects().get(key, max_bytes=MAX_TESTCASE_BYTES),
        falsifying_example=group.falsifying_example, group_id=group.id, title=row.title,
        signature=group.signature,
    )  # fmt: skip
    if out_path is not None and str(out_path) == "-":
        out(source.rstrip("\n"))
        return
    target = out_path or Path(default_test_path(group.id))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    out(str(target))


def _reproduction(
    context: CliContext, group_id: str, commit: str | None, *, minimized: bool
) -> tuple[TriageSpec, bytes]:
    with context.database().transaction() as conn:
        group = triage_store.group_triage(conn, grouping.get_group(conn, group_id).id)
        source = get_repo(conn, group.repo).source
        prefix = f"crashes/{group.repo}/{harness_id(group.harness)}/"
        first = triage_store.first_testcase(conn, group_id, prefix=prefix)
        key = group.minimized_key if minimized else first
        anchor = group.crash_commit or triage_store.first_commit(conn, group_id)
    if key is None:
        what = "minimized testcase" if minimized else f"testcase of harness {group.harness!r}"
        raise NotFoundError(f"crash group {group_id!r} has no {what}")
    registry = context.registry()
    at = registry.resolve(group.repo, validate_ref(commit)) if commit else anchor
    harness = _harness(registry.collection(group.repo, anchor).harnesses, group.harness)
    spec = TriageSpec(
        job_id=new_id("repro"),
        task=TriageTask.VERIFY,
        repo=group.repo,
        source=source,
        group_id=group.id,
        signature=group.signature,
        harness=harness.name,
        kind=harness.kind,
        path=harness.path,
        options=harness.options,
        commit=at,
        testcase_key=key,
        harness_commit=anchor,
    )
    return spec, context.objects().get(key, max_bytes=MAX_TESTCASE_BYTES)


def _harness(harnesses: tuple[Harness, ...] | list[Harness], name: str) -> Harness:
    for harness in harnesses:
        if harness.name == name:
            return harness
    raise NotFoundError(f"harness {name!r} is gone from the crash's commit")


def _reliability(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _print_detail(detail: dict[str, Any]) -> None:
    out(f"{detail['id']}  {detail['title']}  [{detail['status']}]")
    out(f"repository {detail['repo']}, harness {detail['harness']}")
    out(f"signature {detail['signature']} ({detail['canonical']})")
    out(f"reliability {_reliability(detail['reliability'])}")
    introduced = detail["introduced"]
    if introduced:
        note = f"; {introduced['note']}" if introduced.get("note") else ""
        out(
            f"introduced by {introduced['commit'][:12]} (last good "
            f"{(introduced.get('last_good') or '-')[:12]}, {introduced['confidence']} confidence, "
            f"{introduced['steps']} reproductions){note}"
        )
    blame = detail["blame"]
    if blame:
        out(f"blame {blame['path']}:{blame['line']} -> {blame['commit'][:12]} {blame['author']} "
            f"{blame['date']} {blame['summary']!r}")  # fmt: skip
    for branch, state in sorted(detail["branches"].items()):
        fixed = state.get("fixed") or {}
        suffix = f" by {fixed['commit'][:12]}" if fixed.get("commit") else ""
        out(f"  {branch}: {state['status']}{suffix} (checked at {state['commit'][:12]})")
    if detail["falsifying_example"]:
        out(detail["falsifying_example"])
    for other in detail["likely_duplicates"]:
        out(f"  likely duplicate: {other['id']} ({other['score']:.2f})")
