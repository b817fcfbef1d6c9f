"""The audit log: who changed what, when, and from where. Append-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from orchestrator.store.schema import audit_log


@dataclass(frozen=True)
class AuditEntry:
    """One state-changing call."""

    actor: str
    action: str
    at: float
    target: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    remote_addr: str | None = None
    id: int | None = None


def append(conn: sa.Connection, entry: AuditEntry) -> int:
    """Record an entry; return its id."""
    result = conn.execute(
        audit_log.insert().values(
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            detail=dict(entry.detail),
            remote_addr=entry.remote_addr,
        )
    )
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - an INSERT of one row always has a key
        raise RuntimeError("the audit log insert returned no id")
    return int(key[0])


def entries(
    conn: sa.Connection, *, limit: int = 100, before_id: int | None = None
) -> list[AuditEntry]:
    """The newest entries first; page with ``before_id``."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return [
        AuditEntry(
            actor=r.actor,
            action=r.action,
            at=r.at,
            target=r.target,
            detail=r.detail,
            remote_addr=r.remote_addr,
            id=r.id,
        )
        for r in conn.execute(query)
    ]
