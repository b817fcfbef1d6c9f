"""Repositories and the harnesses (and skipped files) found in them at each commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.identity import validate_repo_name
from orchestrator.store.schema import harnesses, repos
from orchestrator.store.sql import insert_ignoring_duplicates


@dataclass(frozen=True)
class RepoRecord:
    """A registered repository."""

    name: str
    source: str
    default_branch: str | None
    head_commit: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class HarnessRecord:
    """A file considered at a commit: a found harness, or a skipped file with its reason."""

    name: str
    path: str
    status: str
    kind: str | None = None
    reason: str | None = None
    detail: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def add_repo(
    conn: sa.Connection,
    *,
    name: str,
    source: str,
    default_branch: str | None,
    head_commit: str | None,
    now: float,
) -> RepoRecord:
    """Register a repository; ConflictError if the name or the source is taken."""
    validate_repo_name(name)
    clash = conn.execute(
        sa.select(repos.c.name, repos.c.source).where(
            sa.or_(repos.c.name == name, repos.c.source == source)
        )
    ).first()
    if clash is not None:
        if clash.name == name:
            raise ConflictError(f"a repository named {name!r} exists already ({clash.source})")
        raise ConflictError(f"{source!r} is registered already as {clash.name!r}")
    try:
        conn.execute(
            repos.insert().values(
                name=name,
                source=source,
                default_branch=default_branch,
                head_commit=head_commit,
                created_at=now,
                updated_at=now,
            )
        )
    except sa.exc.IntegrityError as exc:  # lost a race with another registration
        raise ConflictError(f"repository {name!r} ({source!r}) was registered meanwhile") from exc
    return RepoRecord(name, source, default_branch, head_commit, now, now)


def get_repo(conn: sa.Connection, name: str) -> RepoRecord:
    """The repository ``name``; NotFoundError naming it if there is none."""
    record = find_repo(conn, name)
    if record is None:
        raise NotFoundError(f"no repository named {name!r}")
    return record


def find_repo(conn: sa.Connection, name: str) -> RepoRecord | None:
    """The repository ``name``, if there is one."""
    row = conn.execute(sa.select(repos).where(repos.c.name == name)).first()
    return None if row is None else _repo(row)


def find_repo_by_source(conn: sa.Connection, source: str) -> RepoRecord | None:
    """The repository registered from ``source`` (canonical form), if any."""
    row = conn.execute(sa.select(repos).where(repos.c.source == source)).first()
    return None if row is None else _repo(row)


def list_repos(conn: sa.Connection) -> list[RepoRecord]:
    """Every repository, by name."""
    return [_repo(row) for row in conn.execute(sa.select(repos).order_by(repos.c.name))]


def update_repo_head(
    conn: sa.Connection, name: str, *, default_branch: str | None, head_commit: str, now: float
) -> None:
    """Record a refreshed default branch and its head commit."""
    result = conn.execute(
        repos.update()
        .where(repos.c.name == name)
        .values(default_branch=default_branch, head_commit=head_commit, updated_at=now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"no repository named {name!r}")


def record_harnesses(
    conn: sa.Connection, repo: str, commit: str, entries: Iterable[HarnessRecord]
) -> int:
    """Store what discovery found at a commit; entries already stored are left as they are."""
    rows = [
        {
            "repo": repo,
            "commit": commit,
            "name": e.name,
            "path": e.path,
            "status": e.status,
            "kind": e.kind,
            "reason": e.reason,
            "detail": e.detail,
            "options": dict(e.options),
        }
        for e in entries
    ]
    return insert_ignoring_duplicates(conn, harnesses, rows)


def harnesses_at(
    conn: sa.Connection, repo: str, commit: str, *, include_skipped: bool = False
) -> list[HarnessRecord]:
    """The harnesses recorded at a commit (with skipped files if asked), by name."""
    query = sa.select(harnesses).where(harnesses.c.repo == repo, harnesses.c.commit == commit)
    if not include_skipped:
        query = query.where(harnesses.c.status == "found")
    return [
        HarnessRecord(
            name=r.name,
            path=r.path,
            status=r.status,
            kind=r.kind,
            reason=r.reason,
            detail=r.detail,
            options=r.options,
        )
        for r in conn.execute(query.order_by(harnesses.c.name))
    ]


def _repo(row: sa.Row[Any]) -> RepoRecord:
    return RepoRecord(
        name=row.name,
        source=row.source,
        default_branch=row.default_branch,
        head_commit=row.head_commit,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
