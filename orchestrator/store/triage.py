"""Triage results in the store: per-group analysis, per-branch status, re-checks, links.

A group's own ``status`` says what a triager decided (``wontfix``, ``duplicate``) or what
analysis measured (``flaky`` below a reliability of 0.5, else ``open``); its status on a
branch (``crash_branch_status``) says whether it still crashes there or was fixed there,
with the fix range. ``status_on`` combines the two the way the gate and reports read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.store.schema import (
    campaign_checks,
    campaign_triage,
    crash_branch_status,
    crash_groups,
    crash_links,
    crash_sightings,
)
from orchestrator.store.sql import insert_ignoring_duplicates

FLAKY_BELOW = 0.5
TRIAGER_STATUSES = ("wontfix", "duplicate")


@dataclass(frozen=True)
class GroupTriage:
    """What triage knows about a group, for planning re-checks and for reports."""

    id: str
    repo: str
    signature: str
    harness: str
    status: str
    merged_into: str | None
    triage_state: str | None
    triage_detail: str | None
    crash_commit: str | None
    reliability: float | None
    minimized_key: str | None
    falsifying_example: str | None
    introduced: Mapping[str, Any] | None
    blame: Mapping[str, Any] | None


def group_triage(conn: sa.Connection, group_id: str) -> GroupTriage:
    """One group's triage record."""
    row = conn.execute(sa.select(crash_groups).where(crash_groups.c.id == group_id)).one()
    return _triage(row)


def groups_to_recheck(conn: sa.Connection, repo: str) -> list[GroupTriage]:
    """The repository's groups that may still crash somewhere: candidates for re-checks."""
    rows = conn.execute(
        sa.select(crash_groups)
        .where(
            crash_groups.c.repo == repo,
            crash_groups.c.status.in_(("open", "flaky")),
            crash_groups.c.merged_into.is_(None),
        )
        .order_by(crash_groups.c.first_seen_at, crash_groups.c.id)
    )
    return [_triage(row) for row in rows]


def start_analysis(conn: sa.Connection, group_id: str) -> bool:
    """Claim a group for analysis; False if it was analysed or claimed before.

    A group whose last analysis failed for a passing reason (``retry``) can be claimed
    again.
    """
    result = conn.execute(
        sa.update(crash_groups)
        .where(
            crash_groups.c.id == group_id,
            sa.or_(crash_groups.c.triage_state.is_(None), crash_groups.c.triage_state == "retry"),
        )
        .values(triage_state="pending")
    )
    return result.rowcount == 1


def record_analysis(
    conn: sa.Connection,
    group_id: str,
    *,
    state: str,
    detail: str | None,
    crash_commit: str,
    reliability: float | None,
    minimized_key: str | None,
    falsifying_example: str | None,
    introduced: Mapping[str, Any] | None,
    blame: Mapping[str, Any] | None,
) -> None:
    """Store an analysis (``state``: done, failed, or retry for a passing failure); a
    reliability below 0.5 makes an open group flaky (and back)."""
    if state not in ("done", "failed", "retry"):
        raise ValueError(f"invalid triage state {state!r}")
    values: dict[str, Any] = {
        "triage_state": state,
        "triage_detail": detail,
        "crash_commit": crash_commit,
        "reliability": reliability,
        "minimized_key": minimized_key,
        "falsifying_example": falsifying_example,
        "introduced": dict(introduced) if introduced is not None else None,
        "blame": dict(blame) if blame is not None else None,
    }
    conn.execute(sa.update(crash_groups).where(crash_groups.c.id == group_id).values(values))
    if reliability is not None:
        conn.execute(
            sa.update(crash_groups)
            .where(crash_groups.c.id == group_id, crash_groups.c.status.in_(("open", "flaky")))
            .values(status="flaky" if reliability < FLAKY_BELOW else "open")
        )


def set_branch_status(
    conn: sa.Connection,
    group_id: str,
    branch: str,
    *,
    status: str,
    commit: str,
    campaign_id: str | None,
    fixed: Mapping[str, Any] | None,
    as_of: float,
    now: float,
) -> None:
    """Record a group's status on a branch as of ``commit``.

    ``as_of`` is the checking campaign's creation time: the newest campaign's word wins,
    whatever order results arrive in.
    """
    values = {
        "status": status,
        "commit": commit,
        "campaign_id": campaign_id,
        "fixed": dict(fixed) if fixed is not None else None,
        "as_of": as_of,
        "updated_at": now,
    }
    inserted = insert_ignoring_duplicates(
        conn, crash_branch_status, [{"group_id": group_id, "branch": branch, **values}]
    )
    if not inserted:
        conn.execute(
            sa.update(crash_branch_status)
            .where(
                crash_branch_status.c.group_id == group_id,
                crash_branch_status.c.branch == branch,
                crash_branch_status.c.as_of <= as_of,
            )
            .values(values)
        )


def branch_statuses(conn: sa.Connection, group_id: str) -> dict[str, Mapping[str, Any]]:
    """A group's status on every branch it was checked on."""
    rows = conn.execute(
        sa.select(crash_branch_status).where(crash_branch_status.c.group_id == group_id)
    )
    return {
        row.branch: {"status": row.status, "commit": row.commit, "fixed": row.fixed} for row in rows
    }


def status_on(group_status: str, check: str | None) -> str:
    """A group's status as one campaign saw it: a triager's decision, else ``fixed`` when
    the campaign's re-check proved it, else the group's own (open or flaky).

    ``check`` is None for a group the campaign found (it crashed there), else the
    re-check's result; a re-check that could not tell (build failed …) leaves it open.
    """
    if group_status in TRIAGER_STATUSES:
        return group_status
    if check == "fixed":
        return "fixed"
    return "flaky" if group_status == "flaky" else "open"


def record_check(
    conn: sa.Connection, campaign_id: str, group_id: str, job_id: str, now: float
) -> bool:
    """Note that a campaign re-checks a group; False if it already does."""
    return bool(
        insert_ignoring_duplicates(
            conn,
            campaign_checks,
            [
                {
                    "campaign_id": campaign_id,
                    "group_id": group_id,
                    "job_id": job_id,
                    "result": None,
                    "created_at": now,
                }
            ],
        )
    )


def finish_check(
    conn: sa.Connection,
    campaign_id: str,
    group_id: str,
    result: str,
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Record what a re-check found (open, fixed with its range, or why it could not tell)."""
    conn.execute(
        sa.update(campaign_checks)
        .where(
            campaign_checks.c.campaign_id == campaign_id,
            campaign_checks.c.group_id == group_id,
            campaign_checks.c.result.is_(None),
        )
        .values(result=result, fixed=dict(fixed) if fixed is not None else None)
    )


def planned(conn: sa.Connection, campaign_id: str) -> tuple[bool, bool]:
    """Whether a campaign's re-checks, and its analyses, have been planned."""
    row = conn.execute(
        sa.select(campaign_triage).where(campaign_triage.c.campaign_id == campaign_id)
    ).one_or_none()
    if row is None:
        return False, False
    return row.checks_planned_at is not None, row.analysis_planned_at is not None


def mark_planned(conn: sa.Connection, campaign_id: str, what: str, now: float) -> None:
    """Record that a campaign's ``checks`` or ``analysis`` jobs are planned."""
    column = {"checks": "checks_planned_at", "analysis": "analysis_planned_at"}[what]
    insert_ignoring_duplicates(conn, campaign_triage, [{"campaign_id": campaign_id}])
    conn.execute(
        sa.update(campaign_triage)
        .where(campaign_triage.c.campaign_id == campaign_id)
        .values({column: now})
    )


def known_bad_commits(conn: sa.Connection, group_id: str) -> list[str]:
    """Commits the group is known to crash at: its sightings and open branch checks."""
    seen = conn.execute(
        sa.select(crash_sightings.c.commit).where(crash_sightings.c.group_id == group_id).distinct()
    ).scalars()
    open_at = conn.execute(
        sa.select(crash_branch_status.c.commit).where(
            crash_branch_status.c.group_id == group_id, crash_branch_status.c.status != "fixed"
        )
    ).scalars()
    return sorted({*seen, *open_at})


def first_testcase(
    conn: sa.Connection, group_id: str, *, prefix: str, campaign_id: str | None = None
) -> str | None:
    """The testcase of a group's first sighting under ``prefix`` (one harness's crashes),
    preferring one campaign's sightings when given.

    Two harnesses can crash the same way (harness frames are not in the signature): a
    testcase only replays through the harness that found it.
    """
    query = sa.select(crash_sightings.c.testcase_key).where(
        crash_sightings.c.group_id == group_id,
        crash_sightings.c.testcase_key.startswith(prefix, autoescape=True),
    )
    for scoped in (
        () if campaign_id is None else (crash_sightings.c.campaign_id == campaign_id,),
        (),
    ):
        key: str | None = conn.execute(
            query.where(*scoped).order_by(crash_sightings.c.id).limit(1)
        ).scalar_one_or_none()
        if key is not None:
            return key
    return None


def first_commit(conn: sa.Connection, group_id: str) -> str:
    """The commit of a group's first sighting."""
    commit: str = conn.execute(
        sa.select(crash_sightings.c.commit)
        .where(crash_sightings.c.group_id == group_id)
        .order_by(crash_sightings.c.id)
        .limit(1)
    ).scalar_one()
    return commit


def add_links(
    conn: sa.Connection, group_id: str, others: Iterable[tuple[str, float]], now: float
) -> int:
    """Link a group to likely duplicates (stored once per pair, ordered ids)."""
    rows = [
        {"group_a": min(group_id, other), "group_b": max(group_id, other), "score": round(score, 3),
         "created_at": now}
        for other, score in others
        if other != group_id
    ]  # fmt: skip
    return insert_ignoring_duplicates(conn, crash_links, rows)


def linked_groups(conn: sa.Connection, group_id: str) -> list[tuple[str, float]]:
    """A group's likely duplicates, best first."""
    rows = conn.execute(
        sa.select(crash_links).where(
            sa.or_(crash_links.c.group_a == group_id, crash_links.c.group_b == group_id)
        )
    )
    pairs = [(row.group_b if row.group_a == group_id else row.group_a, row.score) for row in rows]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def _triage(row: sa.Row[Any]) -> GroupTriage:
    return GroupTriage(
        id=row.id,
        repo=row.repo,
        signature=row.signature,
        harness=row.harness,
        status=row.status,
        merged_into=row.merged_into,
        triage_state=row.triage_state,
        triage_detail=row.triage_detail,
        crash_commit=row.crash_commit,
        reliability=row.reliability,
        minimized_key=row.minimized_key,
        falsifying_example=row.falsifying_example,
        introduced=row.introduced,
        blame=row.blame,
    )
