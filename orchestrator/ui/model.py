"""View models of the web UI and the static reports, built once from the store.

Each function reads what one page needs and returns plain values (dicts, lists, strings);
the templates only render them, autoescaped. Crash data stays attacker-controlled text all
the way: nothing here marks it safe, and previews of testcases are bounded and printable.
"""

from __future__ import annotations

import base64
import string
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from orchestrator.registry import Registry
from orchestrator.reports.links import SourceLinks, source_links
from orchestrator.reports.plots import Series, line_chart
from orchestrator.store import campaigns, grouping, repos
from orchestrator.store.database import Database
from orchestrator.store.schema import (
    crash_groups,
    crash_sightings,
    job_attempts,
    job_stats,
    jobs,
)
from orchestrator.summary import iso
from orchestrator.views import campaign_summary, collection_json, repo_json
from workers.errors import WorkerError
from workers.queue import FUZZ_QUEUE
from workers.storage.base import ObjectStore

PREVIEW_BYTES = 2048
MAX_PREVIEW_READ = 1024 * 1024
_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


def dashboard(database: Database) -> dict[str, Any]:
    """Repositories, recent campaigns and open crash groups by kind."""
    with database.transaction() as conn:
        found = repos.list_repos(conn)
        recent = campaigns.list_campaigns(conn, limit=20)
        by_kind = conn.execute(
            sa.select(crash_groups.c.kind, sa.func.count())
            .where(crash_groups.c.status.in_(("open", "flaky")))
            .group_by(crash_groups.c.kind)
            .order_by(crash_groups.c.kind)
        ).all()
        newest = grouping.list_groups(conn, status="open")[:20]
    return {
        "repos": [repo_json(r) for r in found],
        "campaigns": [_campaign_row(c) for c in recent],
        "open_by_kind": [{"kind": kind, "count": count} for kind, count in by_kind],
        "open_crashes": [
            {"id": g.id, "repo": g.repo, "title": g.title, "kind": g.kind, "status": g.status}
            for g in newest
        ],
    }


def repo_page(database: Database, registry: Registry, name: str) -> dict[str, Any]:
    """A repository: its harnesses at the head with their collection status, its campaigns."""
    with database.transaction() as conn:
        record = repos.get_repo(conn, name)
        recent = campaigns.list_campaigns(conn, repo=name, limit=50)
    collection = (
        collection_json(registry.collection(name, record.head_commit), include_skipped=True)
        if record.head_commit
        else {"harnesses": [], "skipped": []}
    )
    links = source_links(record.source)
    return {
        "repo": repo_json(record),
        "head_link": links.commit(record.head_commit) if record.head_commit else None,
        **collection,
        "campaigns": [_campaign_row(c) for c in recent],
    }


def campaign_page(
    database: Database, registry: Registry, campaign_id: str, *, report: str | None
) -> dict[str, Any]:
    """A campaign: its summary, plots of coverage and executions, links, harness details."""
    with database.transaction() as conn:
        record = campaigns.get_campaign(conn, campaign_id)
        source = repos.get_repo(conn, record.repo).source
        points = _stat_points(conn, campaign_id, record.started_at)
    summary = campaign_summary(database, registry, record, report=report)
    links = source_links(source)
    coverage = [Series(name, [(t, c) for t, c, _e in rows]) for name, rows in points.items()]
    execs = [Series(name, [(t, e) for t, _c, e in rows]) for name, rows in points.items()]
    crashes = [
        {
            **crash,
            "introduced_link": _commit_link(links, crash.get("introduced")),
            "fixed_link": _commit_link(links, crash.get("fixed")),
            "blame_link": _blame_link(links, crash.get("blame")),
        }
        for crash in summary["crashes"]
    ]
    counts: dict[str, int] = defaultdict(int)
    for crash in summary["crashes"]:
        counts[crash["status"]] += 1
        counts["new"] += 1 if crash["new"] else 0
    return {
        "s": summary,
        "crashes": crashes,
        "counts": dict(counts),
        "total_execs": sum(h["execs"] for h in summary["harnesses"]),
        "finished": record.status.finished,
        "duration_s": record.duration_s,
        "workers": record.workers,
        "commit_link": links.commit(record.commit),
        # As images (data: URIs): the SVG never becomes part of the page's markup.
        "coverage_svg": _data_uri(line_chart("Coverage over time", coverage, y_label="edges")),
        "execs_svg": _data_uri(line_chart("Executions over time", execs, y_label="executions")),
        "details": _harness_details(database, campaign_id),
    }


def crash_page(
    database: Database, registry: Registry, objects: ObjectStore, group_id: str
) -> dict[str, Any]:
    """A crash group: traceback with linked frames, testcase previews, triage, statuses."""
    with database.transaction() as conn:
        detail = grouping.group_detail(conn, group_id)
        source = repos.get_repo(conn, detail["repo"]).source
    links = source_links(source)
    commit = detail["crash_commit"] or (
        detail["sightings"][0]["commit"] if detail["sightings"] else None
    )
    first = detail["sightings"][0] if detail["sightings"] else None
    frames = _frames((first or {}).get("traceback") or "", links, commit)
    testcase_key = first["testcase"] if first else None
    return {
        "c": detail,
        "commit": commit,
        "commit_link": links.commit(commit) if commit else None,
        "frames": frames,
        "testcase": _preview(objects, testcase_key),
        "minimized": _preview(objects, detail["minimized"]),
        "introduced": _commit_detail(registry, detail["repo"], links, detail["introduced"]),
        "fixed": {
            branch: {**state, "link": _commit_link(links, state.get("fixed"))}
            for branch, state in detail["branches"].items()
        },
        "blame_link": _blame_link(links, detail["blame"]),
        "reproduce": _reproduce_commands(detail),
    }


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _campaign_row(record: campaigns.CampaignRecord) -> dict[str, Any]:
    return {
        "id": record.id, "repo": record.repo, "branch": record.branch,
        "commit": record.commit, "status": record.status.value,
        "created_at": iso(record.created_at),
    }  # fmt: skip


def _stat_points(
    conn: sa.Connection, campaign_id: str, started: float | None
) -> dict[str, list[tuple[float, float, float]]]:
    """Per harness: (seconds since the campaign started, coverage, cumulative executions)."""
    rows = conn.execute(
        sa.select(jobs.c.id, jobs.c.harness, job_stats.c.attempt, job_stats.c.elapsed_s,
                  job_stats.c.execs, job_stats.c.coverage, job_attempts.c.started_at)
        .join(job_stats, job_stats.c.job_id == jobs.c.id)
        .join(job_attempts, sa.and_(job_attempts.c.job_id == job_stats.c.job_id,
                                    job_attempts.c.attempt == job_stats.c.attempt))
        .where(jobs.c.campaign_id == campaign_id, jobs.c.queue == FUZZ_QUEUE)
        .order_by(job_attempts.c.started_at, job_stats.c.elapsed_s)
        .limit(200_000)
    ).all()  # fmt: skip
    base = started or 0.0
    # Executions restart with each attempt: an attempt's last count joins the harness's
    # total when its next attempt begins (parallel attempts make this an approximation).
    done: dict[str, float] = defaultdict(float)
    current: dict[str, tuple[tuple[str, int], float]] = {}
    points: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for row in rows:
        harness = row.harness or ""
        key = (row.id, row.attempt)
        previous = current.get(harness)
        if previous is not None and previous[0] != key:
            done[harness] += previous[1]
        current[harness] = (key, float(row.execs))
        offset = max(0.0, (row.started_at or base) - base) + row.elapsed_s
        points[harness].append((offset, float(row.coverage), done[harness] + row.execs))
    return dict(points)


def _harness_details(database: Database, campaign_id: str) -> dict[str, str]:
    """The start-up log excerpt of each harness whose jobs all failed to start."""
    with database.transaction() as conn:
        rows = conn.execute(
            sa.select(jobs.c.harness, jobs.c.outcome, jobs.c.outcome_data).where(
                jobs.c.campaign_id == campaign_id, jobs.c.queue == FUZZ_QUEUE
            )
        ).all()
    failed: dict[str, str] = {}
    ok: set[str] = set()
    for harness, outcome, data in rows:
        if outcome in ("ok", "crashed"):
            ok.add(harness)
        elif outcome and isinstance(data, dict) and data.get("detail"):
            failed[harness] = str(data["detail"])[-4000:]
    return {h: text for h, text in failed.items() if h not in ok}


def _commit_link(links: SourceLinks, section: Any) -> str | None:
    if isinstance(section, dict) and isinstance(section.get("commit"), str):
        return links.commit(section["commit"])
    return None


def _blame_link(links: SourceLinks, blame: Any) -> str | None:
    if not isinstance(blame, dict):
        return None
    return links.line(str(blame.get("commit", "")), str(blame.get("path", "")), blame.get("line"))


def parse_stack(traceback: str) -> list[dict[str, Any]]:
    """The stored stack (``path:line in function`` per line, outermost first) as frames."""
    frames = []
    for line in traceback.splitlines()[:400]:
        # A path may hold " in " or ":", a function name neither (Python prints co_name).
        location, _, function = line.rpartition(" in ")
        path, _, number = location.rpartition(":")
        plain = number.isascii() and number.isdigit() and len(number) < 10
        kept = path if (plain or (path and not number)) else location  # "x.py:" has no line
        frames.append({"path": kept, "line": int(number) if plain else None,
                       "function": function})  # fmt: skip
    return frames


def frames_of(conn: sa.Connection, group_id: str) -> list[dict[str, Any]]:
    """A group's stack, from its first sighting."""
    traceback = conn.execute(
        sa.select(crash_sightings.c.traceback)
        .where(crash_sightings.c.group_id == group_id)
        .order_by(crash_sightings.c.id)
        .limit(1)
    ).scalar_one_or_none()
    return parse_stack(traceback or "")


def _frames(traceback: str, links: SourceLinks, commit: str | None) -> list[dict[str, Any]]:
    """The stack with each repository frame linked to its line at the crash's commit."""
    frames = []
    for frame in parse_stack(traceback):
        path, line_no = frame["path"], frame["line"]
        repository = bool(path) and not path.startswith("/")
        link = links.line(commit, path, line_no) if repository and commit else None
        frames.append({**frame, "repository": repository, "link": link})
    return frames


def _preview(objects: ObjectStore, key: str | None) -> dict[str, Any] | None:
    """A bounded hex and text preview of a stored testcase."""
    if not key:
        return None
    try:
        size = objects.stat(key).size
        data = objects.get(key, max_bytes=MAX_PREVIEW_READ) if size <= MAX_PREVIEW_READ else b""
    except (WorkerError, LookupError):
        return {"key": key, "missing": True}
    head = data[:PREVIEW_BYTES]  # a testcase too large to read for a preview shows none
    rows = []
    for offset in range(0, len(head), 16):
        chunk = head[offset : offset + 16]
        text = "".join(chr(b) if chr(b) in _PRINTABLE else "." for b in chunk)
        rows.append({"offset": f"{offset:08x}", "hex": chunk.hex(" "), "text": text})
    return {"key": key, "size": size, "rows": rows, "truncated": size > PREVIEW_BYTES,
            "missing": False}  # fmt: skip


def _commit_detail(
    registry: Registry, repo: str, links: SourceLinks, introduced: Any
) -> dict[str, Any] | None:
    """The introducing commit with its message, author and date (from the mirror)."""
    if not isinstance(introduced, dict) or not isinstance(introduced.get("commit"), str):
        return None
    result = {**introduced, "link": links.commit(introduced["commit"]),
              "last_good_link": links.commit(str(introduced.get("last_good") or ""))}  # fmt: skip
    try:
        info = registry.git.commit_info(registry.mirror_path(repo), introduced["commit"])
    except (WorkerError, ValueError):
        return result
    return {**result, "author": info.author, "date": info.date, "summary": info.summary}


def _reproduce_commands(detail: dict[str, Any]) -> list[str]:
    harness = str(detail["harness"])
    commands = [f"fuzzorch crash reproduce {detail['id']}"]
    if "::" not in harness:
        commands.append(f"python {harness} testcase")
    commands.append(f"fuzzorch crash export-test {detail['id']}")
    return commands
