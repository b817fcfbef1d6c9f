"""Campaigns: (repository, branch, commit, budget) and their lifecycle.

queued -> running -> triaging -> done, or cancelled / failed. Every transition is one
UPDATE guarded by the status it leaves, so a cancel racing a finish cannot both win.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.store.schema import campaigns


class CampaignStatus(enum.StrEnum):
    """Where a campaign is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    TRIAGING = "triaging"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True once nothing more will happen to the campaign."""
        return self in (CampaignStatus.DONE, CampaignStatus.CANCELLED, CampaignStatus.FAILED)


class FailOn(enum.StrEnum):
    """The release gate (DESIGN.md, "CLI contract")."""

    NEW = "new"
    OPEN = "open"
    NONE = "none"


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign as stored."""

    id: str
    repo: str
    branch: str
    commit: str
    status: CampaignStatus
    priority: int
    duration_s: float
    workers: int
    fail_on: FailOn
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None

    @property
    def budget_cpu_s(self) -> float:
        """The campaign's fuzzing budget: its duration times its workers."""
        return self.duration_s * self.workers


def create_campaign(
    conn: sa.Connection,
    *,
    campaign_id: str,
    repo: str,
    branch: str,
    commit: str,
    duration_s: float,
    workers: int,
    fail_on: FailOn,
    priority: int = 0,
    now: float,
    created_by: str | None = None,
) -> CampaignRecord:
    """Record a queued campaign."""
    if not duration_s > 0 or workers < 1:
        raise ValueError(
            f"a campaign needs duration > 0 and workers >= 1, got {duration_s!r}, {workers!r}"
        )
    conn.execute(
        campaigns.insert().values(
            id=campaign_id,
            repo=repo,
            branch=branch,
            commit=commit,
            status=CampaignStatus.QUEUED.value,
            priority=priority,
            duration_s=duration_s,
            workers=workers,
            fail_on=fail_on.value,
            created_at=now,
            created_by=created_by,
        )
    )
    return get_campaign(conn, campaign_id)


def get_campaign(conn: sa.Connection, campaign_id: str) -> CampaignRecord:
    """The campaign ``campaign_id``; NotFoundError naming it if there is none."""
    row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()
    if row is None:
        raise NotFoundError(f"no campaign {campaign_id!r}")
    return _record(row)


def list_campaigns(
    conn: sa.Connection,
    *,
    repo: str | None = None,
    statuses: tuple[CampaignStatus, ...] | None = None,
    limit: int = 100,
) -> list[CampaignRecord]:
    """Campaigns, newest first."""
    query = sa.select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
    if repo is not None:
        query = query.where(campaigns.c.repo == repo)
    if statuses is not None:
        query = query.where(campaigns.c.status.in_([s.value for s in statuses]))
    return [_record(row) for row in conn.execute(query.limit(limit))]


def transition(
    conn: sa.Connection,
    campaign_id: str,
    *,
    from_: tuple[CampaignStatus, ...],
    to: CampaignStatus,
    now: float,
    error: str | None = None,
) -> bool:
    """Move a campaign to ``to`` if it is in one of ``from_``; False if it was not."""
    values: dict[str, Any] = {"status": to.value}
    if to is CampaignStatus.RUNNING:
        values["started_at"] = now
    if to.finished:
        values["finished_at"] = now
    if error is not None:
        values["error"] = error[:4000]
    result = conn.execute(
        campaigns.update()
        .where(campaigns.c.id == campaign_id, campaigns.c.status.in_([s.value for s in from_]))
        .values(**values)
    )
    return result.rowcount == 1


def require_transition(
    conn: sa.Connection,
    campaign_id: str,
    *,
    from_: tuple[CampaignStatus, ...],
    to: CampaignStatus,
    now: float,
) -> None:
    """Like transition, but ConflictError (naming the current status) when it cannot."""
    if not transition(conn, campaign_id, from_=from_, to=to, now=now):
        current = get_campaign(conn, campaign_id).status
        raise ConflictError(
            f"campaign {campaign_id!r} is {current.value}, cannot become {to.value}"
        )


def _record(row: sa.Row[Any]) -> CampaignRecord:
    return CampaignRecord(
        id=row.id,
        repo=row.repo,
        branch=row.branch,
        commit=row.commit,
        status=CampaignStatus(row.status),
        priority=row.priority,
        duration_s=row.duration_s,
        workers=row.workers,
        fail_on=FailOn(row.fail_on),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
    )
