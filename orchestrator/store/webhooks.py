"""Webhook state: each repository's sealed secret, and every delivery once."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from orchestrator.store.schema import repo_secrets, webhook_deliveries
from orchestrator.store.sql import insert_ignoring_duplicates


@dataclass(frozen=True)
class Delivery:
    """A push a forge announced, and what became of it."""

    forge: str
    delivery: str
    repo: str
    branch: str
    commit: str
    body_sha256: str
    policy_id: int | None
    state: str
    campaign_id: str | None
    detail: str | None
    attempts: int = 0


def set_secret(conn: sa.Connection, repo: str, sealed: str, *, now: float) -> None:
    """Store (or replace) a repository's sealed webhook secret."""
    conn.execute(repo_secrets.delete().where(repo_secrets.c.repo == repo))
    conn.execute(repo_secrets.insert().values(repo=repo, sealed=sealed, created_at=now))


def sealed_secret(conn: sa.Connection, repo: str) -> str | None:
    """A repository's sealed webhook secret, if it has one."""
    sealed: str | None = conn.execute(
        sa.select(repo_secrets.c.sealed).where(repo_secrets.c.repo == repo)
    ).scalar_one_or_none()
    return sealed


def record_delivery(conn: sa.Connection, delivery: Delivery, *, now: float) -> bool:
    """Record a delivery; False if its id, or its very body, was seen before (a forge's
    redelivery, or a replay of a signed body under another delivery id)."""
    row = {**delivery.__dict__, "received_at": now}
    return bool(insert_ignoring_duplicates(conn, webhook_deliveries, [row]))


def queued_deliveries(conn: sa.Connection, *, limit: int = 20) -> list[Delivery]:
    """Deliveries waiting for their campaign, oldest first."""
    rows = conn.execute(
        sa.select(webhook_deliveries)
        .where(webhook_deliveries.c.state == "queued")
        .order_by(webhook_deliveries.c.received_at)
        .limit(limit)
    )
    return [
        Delivery(r.forge, r.delivery, r.repo, r.branch, r.commit, r.body_sha256, r.policy_id,
                 r.state, r.campaign_id, r.detail, r.attempts)
        for r in rows
    ]  # fmt: skip


def settle_delivery(
    conn: sa.Connection,
    forge: str,
    delivery: str,
    *,
    from_state: str,
    state: str,
    campaign_id: str | None = None,
    detail: str | None = None,
) -> bool:
    """Move a delivery from ``from_state`` on; False if another process moved it first."""
    result = conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.forge == forge,
            webhook_deliveries.c.delivery == delivery,
            webhook_deliveries.c.state == from_state,
        )
        .values(state=state, campaign_id=campaign_id, detail=detail)
    )
    return result.rowcount == 1


def retry_delivery(
    conn: sa.Connection, forge: str, delivery: str, *, detail: str, max_attempts: int
) -> bool:
    """Put a started delivery back in the queue after a passing failure; False when it has
    had its attempts (it fails for good)."""
    result = conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.forge == forge,
            webhook_deliveries.c.delivery == delivery,
            webhook_deliveries.c.state == "started",
            webhook_deliveries.c.attempts < max_attempts - 1,
        )
        .values(state="queued", attempts=webhook_deliveries.c.attempts + 1, detail=detail)
    )
    return result.rowcount == 1


def requeue_stalled(conn: sa.Connection, *, before: float) -> int:
    """Deliveries a server claimed but never finished (it died): back to the queue."""
    result = conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.state == "started",
            webhook_deliveries.c.campaign_id.is_(None),
            webhook_deliveries.c.received_at < before,
        )
        .values(state="queued", attempts=webhook_deliveries.c.attempts + 1)
    )
    return int(result.rowcount)
