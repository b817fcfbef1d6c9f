"""Crash groups (one per signature and repository) and their sightings.

Recording is idempotent: a redelivered crash announcement finds its group and its
sighting already there. The database's unique keys decide races between ingest consumers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.identity import new_id
from orchestrator.store.schema import campaign_checks, crash_groups, crash_sightings
from orchestrator.store.sql import insert_ignoring_duplicates
from orchestrator.store.triage import status_on
from workers.contract import CrashReport


@dataclass(frozen=True)
class Sighting:
    """Where a crash was seen: which campaign, job attempt and commit, and how early."""

    repo: str
    campaign_id: str | None
    job_id: str | None
    attempt: int | None
    commit: str
    harness: str
    found_after_s: float | None
    now: float


@dataclass(frozen=True)
class CampaignCrash:
    """A crash group as one campaign saw it (found by fuzzing, or only re-checked)."""

    id: str
    signature: str
    canonical: str
    kind: str
    exception_type: str | None
    title: str
    frames: tuple[str, ...]
    harness: str
    status: str  # on the campaign's branch
    new: bool
    message: str | None
    found_after_s: float | None
    testcase_key: str
    sightings: int
    found: bool = True  # False: only re-checked by this campaign
    reliability: float | None = None
    introduced: Mapping[str, Any] | None = None
    fixed: Mapping[str, Any] | None = None
    blame: Mapping[str, Any] | None = None
    minimized_key: str | None = None
    falsifying_example: str | None = None
    triage_state: str | None = None


def record_sighting(conn: sa.Connection, crash: CrashReport, where: Sighting) -> tuple[str, bool]:
    """Record a crash; return its group id and whether this call created the group."""
    group_id = new_id("crash")
    created = insert_ignoring_duplicates(
        conn,
        crash_groups,
        [
            {
                "id": group_id,
                "repo": where.repo,
                "signature": crash.signature,
                "canonical": crash.canonical,
                "kind": crash.kind,
                "exception_type": crash.exception_type,
                "title": crash.title,
                "frames": list(crash.frames),
                "harness": where.harness,
                "status": "open",
                "first_seen_at": where.now,
                "first_campaign": where.campaign_id,
            }
        ],
    )
    if not created:
        found = conn.execute(
            sa.select(crash_groups.c.id, crash_groups.c.merged_into).where(
                crash_groups.c.repo == where.repo, crash_groups.c.signature == crash.signature
            )
        ).one()
        # A triager merged this signature into another group: that group carries the bug
        # (and its status) from now on, so the sighting is its.
        group_id = found.merged_into or found.id
    insert_ignoring_duplicates(
        conn,
        crash_sightings,
        [
            {
                "group_id": group_id,
                "campaign_id": where.campaign_id,
                "job_id": where.job_id,
                "attempt": where.attempt,
                "commit": where.commit,
                "testcase_key": crash.testcase_key,
                "message": crash.message,
                "traceback": "\n".join(
                    f"{f.path}:{f.line or ''} in {f.function}" for f in crash.stack
                )[:20000],
                "found_after_s": where.found_after_s,
                "seen_at": where.now,
            }
        ],
    )
    return group_id, bool(created)


def campaign_crashes(conn: sa.Connection, campaign_id: str) -> list[CampaignCrash]:
    """Every group a campaign found or re-checked, with its status as that campaign saw it.

    A group the campaign found crashed at its commit: open (or flaky, or a triager's
    decision). A group it only re-checked has the re-check's result. Later campaigns on
    the branch do not change what an earlier campaign's summary says. Found groups come
    first, by how early the campaign found them; then re-checked ones.
    """
    found = _groups_with_sightings(conn, campaign_id, in_campaign=True)
    checks = {
        row.group_id: row
        for row in conn.execute(
            sa.select(campaign_checks).where(campaign_checks.c.campaign_id == campaign_id)
        )
    }
    found_ids = {row.id for row in found}
    checked_ids = (
        sa.select(campaign_checks.c.group_id)
        .where(campaign_checks.c.campaign_id == campaign_id)
        .scalar_subquery()
    )
    checked = [
        row
        for row in _groups_with_sightings(conn, campaign_id, in_campaign=False, only=checked_ids)
        if row.id not in found_ids
    ]
    return [
        *(_crash(row, campaign_id, None) for row in found),
        *(_crash(row, campaign_id, checks[row.id]) for row in checked),
    ]


def _groups_with_sightings(
    conn: sa.Connection,
    campaign_id: str,
    *,
    in_campaign: bool,
    only: sa.ScalarSelect[Any] | None = None,
) -> list[sa.Row[Any]]:
    """Groups with their earliest sighting: in the campaign, or anywhere (re-checks)."""
    where = crash_sightings.c.campaign_id == campaign_id if in_campaign else sa.true()
    first = (
        sa.select(
            crash_sightings.c.group_id,
            sa.func.min(crash_sightings.c.found_after_s).label("found_after_s"),
            sa.func.min(crash_sightings.c.testcase_key).label("testcase_key"),
            sa.func.count().label("sightings"),
        )
        .where(where)
        .group_by(crash_sightings.c.group_id)
        .subquery()
    )
    message = (
        sa.select(crash_sightings.c.message)
        .where(crash_sightings.c.group_id == crash_groups.c.id, where)
        .order_by(crash_sightings.c.id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(crash_groups, first.c.found_after_s, first.c.testcase_key, first.c.sightings,
                  message.label("message"))
        .join(first, first.c.group_id == crash_groups.c.id)
        .order_by(first.c.found_after_s, crash_groups.c.id)
    )  # fmt: skip
    if only is not None:
        query = query.where(crash_groups.c.id.in_(only))
    return list(conn.execute(query))


def _crash(row: sa.Row[Any], campaign_id: str, check: sa.Row[Any] | None) -> CampaignCrash:
    found = check is None
    status = status_on(row.status, None if check is None else check.result)
    return CampaignCrash(
        id=row.id,
        signature=row.signature,
        canonical=row.canonical,
        kind=row.kind,
        exception_type=row.exception_type,
        title=row.title,
        frames=tuple(row.frames),
        harness=row.harness,
        status=status,
        new=row.first_campaign == campaign_id,
        message=row.message,
        found_after_s=row.found_after_s if found else None,
        testcase_key=row.testcase_key,
        sightings=row.sightings if found else 0,
        found=found,
        reliability=row.reliability,
        introduced=row.introduced,
        fixed=check.fixed if check is not None and status == "fixed" else None,
        blame=row.blame,
        minimized_key=row.minimized_key,
        falsifying_example=row.falsifying_example,
        triage_state=row.triage_state,
    )
