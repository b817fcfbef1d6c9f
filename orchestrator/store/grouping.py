"""A triager's view of crash groups: list, show, merge, split, set status.

Grouping by signature is automatic; these are the corrections a person makes. Merging
marks groups as duplicates of a target (the target carries the bug from then on); splitting
undoes a merge. Every change names the bad value when it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from orchestrator.errors import ConflictError, NotFoundError, UsageError
from orchestrator.store.schema import crash_groups, crash_sightings
from orchestrator.store.triage import FLAKY_BELOW, branch_statuses, linked_groups

SETTABLE = ("open", "wontfix")
MAX_LIST = 1000


def get_group(conn: sa.Connection, group_id: str) -> sa.Row[Any]:
    """One group's row, or NotFoundError naming the id."""
    row = conn.execute(sa.select(crash_groups).where(crash_groups.c.id == group_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no crash group {group_id!r}")
    return row


def list_groups(
    conn: sa.Connection, *, repo: str | None = None, status: str | None = None
) -> list[sa.Row[Any]]:
    """Groups, newest first, filtered by repository and group status."""
    query = sa.select(crash_groups).order_by(crash_groups.c.first_seen_at.desc()).limit(MAX_LIST)
    if repo is not None:
        query = query.where(crash_groups.c.repo == repo)
    if status is not None:
        query = query.where(crash_groups.c.status == status)
    return list(conn.execute(query))


def group_detail(conn: sa.Connection, group_id: str) -> dict[str, Any]:
    """Everything known about a group, as JSON."""
    row = get_group(conn, group_id)
    sightings = conn.execute(
        sa.select(crash_sightings)
        .where(crash_sightings.c.group_id == group_id)
        .order_by(crash_sightings.c.id)
        .limit(100)
    ).all()
    merged = conn.execute(
        sa.select(crash_groups.c.id).where(crash_groups.c.merged_into == group_id)
    ).scalars()
    return {
        "id": row.id,
        "repo": row.repo,
        "signature": row.signature,
        "canonical": row.canonical,
        "title": row.title,
        "kind": row.kind,
        "exception_type": row.exception_type,
        "frames": list(row.frames),
        "harness": row.harness,
        "status": row.status,
        "merged_into": row.merged_into,
        "merged": sorted(merged),
        "first_campaign": row.first_campaign,
        "triage": {"state": row.triage_state, "detail": row.triage_detail},
        "crash_commit": row.crash_commit,
        "reliability": row.reliability,
        "introduced": row.introduced,
        "blame": row.blame,
        "minimized": row.minimized_key,
        "falsifying_example": row.falsifying_example,
        "branches": branch_statuses(conn, group_id),
        "likely_duplicates": [
            {"id": other, "score": score} for other, score in linked_groups(conn, group_id)
        ],
        "sightings": [
            {
                "campaign": s.campaign_id,
                "commit": s.commit,
                "testcase": s.testcase_key,
                "message": s.message,
                "traceback": s.traceback,
                "found_after_s": s.found_after_s,
            }
            for s in sightings
        ],
    }


def merge(conn: sa.Connection, sources: Sequence[str], into: str) -> list[str]:
    """Mark ``sources`` duplicates of ``into``; returns the ids merged."""
    target = get_group(conn, into)
    if target.merged_into is not None:
        raise ConflictError(
            f"crash group {into!r} is itself merged into {target.merged_into!r}: merge into that"
        )
    merged = []
    for source in dict.fromkeys(sources):
        if source == into:
            raise UsageError(f"cannot merge crash group {source!r} into itself")
        row = get_group(conn, source)
        if row.repo != target.repo:
            raise UsageError(
                f"crash group {source!r} belongs to {row.repo!r}, {into!r} to {target.repo!r}"
            )
        # Groups merged into the source move to the target: no chains.
        conn.execute(
            sa.update(crash_groups)
            .where(crash_groups.c.merged_into == source)
            .values(merged_into=into)
        )
        conn.execute(
            sa.update(crash_groups)
            .where(crash_groups.c.id == source)
            .values(merged_into=into, status="duplicate")
        )
        merged.append(source)
    return merged


def split(conn: sa.Connection, group_id: str) -> str:
    """Undo a merge: the group stands on its own again; returns the group it left."""
    row = get_group(conn, group_id)
    if row.merged_into is None:
        raise ConflictError(f"crash group {group_id!r} is not merged into another group")
    flaky = row.reliability is not None and row.reliability < FLAKY_BELOW
    conn.execute(
        sa.update(crash_groups)
        .where(crash_groups.c.id == group_id)
        .values(merged_into=None, status="flaky" if flaky else "open")
    )
    left: str = row.merged_into
    return left


def set_status(conn: sa.Connection, group_id: str, status: str) -> None:
    """A triager's decision: ``wontfix``, or back to ``open``."""
    if status not in SETTABLE:
        raise UsageError(f"invalid status {status!r}: expected one of {', '.join(SETTABLE)}")
    row = get_group(conn, group_id)
    if row.merged_into is not None:
        raise ConflictError(
            f"crash group {group_id!r} is merged into {row.merged_into!r}: split it first"
        )
    if status == "open" and row.reliability is not None and row.reliability < FLAKY_BELOW:
        status = "flaky"
    conn.execute(sa.update(crash_groups).where(crash_groups.c.id == group_id).values(status=status))
