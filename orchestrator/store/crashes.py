"""Crash groups (one per signature and repository) and their sightings.

Recording is idempotent: a redelivered crash announcement finds its group and its
sighting already there. The database's unique keys decide races between ingest consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.identity import new_id
from orchestrator.store.schema import crash_groups, crash_sightings
from orchestrator.store.sql import insert_ignoring_duplicates
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
    """A crash group as one campaign saw it."""

    id: str
    signature: str
    canonical: str
    kind: str
    exception_type: str | None
    title: str
    frames: tuple[str, ...]
    harness: str
    status: str
    new: bool
    message: str | None
    found_after_s: float | None
    testcase_key: str
    sightings: int


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
        group_id = conn.execute(
            sa.select(crash_groups.c.id).where(
                crash_groups.c.repo == where.repo, crash_groups.c.signature == crash.signature
            )
        ).scalar_one()
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
    """Every group a campaign saw, with its earliest sighting in that campaign."""
    first = (
        sa.select(
            crash_sightings.c.group_id,
            sa.func.min(crash_sightings.c.found_after_s).label("found_after_s"),
            sa.func.min(crash_sightings.c.testcase_key).label("testcase_key"),
            sa.func.count().label("sightings"),
        )
        .where(crash_sightings.c.campaign_id == campaign_id)
        .group_by(crash_sightings.c.group_id)
        .subquery()
    )
    message = (
        sa.select(crash_sightings.c.message)
        .where(
            crash_sightings.c.group_id == crash_groups.c.id,
            crash_sightings.c.campaign_id == campaign_id,
        )
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
    return [_crash(row, campaign_id) for row in conn.execute(query)]


def _crash(row: sa.Row[Any], campaign_id: str) -> CampaignCrash:
    return CampaignCrash(
        id=row.id,
        signature=row.signature,
        canonical=row.canonical,
        kind=row.kind,
        exception_type=row.exception_type,
        title=row.title,
        frames=tuple(row.frames),
        harness=row.harness,
        status=row.status,
        new=row.first_campaign == campaign_id,
        message=row.message,
        found_after_s=row.found_after_s,
        testcase_key=row.testcase_key,
        sightings=row.sightings,
    )
