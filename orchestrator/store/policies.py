"""Branch policies: which pushed branches start a campaign, and with what budget and gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.branchglob import branch_matches, validate_glob
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.store.campaigns import FailOn
from orchestrator.store.schema import branch_policies


@dataclass(frozen=True)
class Policy:
    """A repository's rule for pushes to branches matching ``branch_glob``."""

    id: int
    repo: str
    branch_glob: str
    duration_s: float
    workers: int
    fail_on: FailOn
    priority: int

    def to_json(self) -> dict[str, Any]:
        """The policy as the API and the CLI show it."""
        return {
            "id": self.id,
            "repo": self.repo,
            "branch": self.branch_glob,
            "duration": self.duration_s,
            "workers": self.workers,
            "fail_on": self.fail_on.value,
            "priority": self.priority,
        }


def add_policy(
    conn: sa.Connection,
    *,
    repo: str,
    branch_glob: str,
    duration_s: float,
    workers: int,
    fail_on: FailOn,
    priority: int,
    now: float,
) -> Policy:
    """Add a policy; ConflictError if the repository has one for that glob already."""
    glob = validate_glob(branch_glob)
    if not 5 <= duration_s <= 7 * 24 * 3600:
        raise ValueError(f"Invalid duration {duration_s!r}: 5 s to 7 days")
    if not 1 <= workers <= 1024:
        raise ValueError(f"Invalid workers {workers!r}: 1 to 1024")
    if not 0 <= priority <= 100:
        raise ValueError(f"Invalid priority {priority!r}: 0 to 100")
    exists = conn.execute(
        sa.select(branch_policies.c.id).where(
            branch_policies.c.repo == repo, branch_policies.c.branch_glob == glob
        )
    ).first()
    if exists is not None:
        raise ConflictError(f"repository {repo!r} already has a policy for {glob!r}")
    try:
        with conn.begin_nested():
            result = conn.execute(
                branch_policies.insert().values(
                    repo=repo, branch_glob=glob, duration_s=duration_s, workers=workers,
                    fail_on=fail_on.value, priority=priority, created_at=now,
                )
            )  # fmt: skip
    except sa.exc.IntegrityError:  # another caller added the same glob just now
        raise ConflictError(f"repository {repo!r} already has a policy for {glob!r}") from None
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - an INSERT of one row always has a key
        raise RuntimeError("the policy insert returned no id")
    return Policy(int(key[0]), repo, glob, duration_s, workers, fail_on, priority)


def list_policies(conn: sa.Connection, repo: str) -> list[Policy]:
    """A repository's policies, oldest first."""
    rows = conn.execute(
        sa.select(branch_policies)
        .where(branch_policies.c.repo == repo)
        .order_by(branch_policies.c.id)
    )
    return [_policy(row) for row in rows]


def remove_policy(conn: sa.Connection, repo: str, branch_glob: str) -> None:
    """Remove the policy for ``branch_glob``; NotFoundError naming it if there is none."""
    result = conn.execute(
        branch_policies.delete().where(
            branch_policies.c.repo == repo, branch_policies.c.branch_glob == branch_glob
        )
    )
    if result.rowcount == 0:
        raise NotFoundError(f"repository {repo!r} has no policy for {branch_glob!r}")


def matching_policy(conn: sa.Connection, repo: str, branch: str) -> Policy | None:
    """The first (oldest) policy whose glob matches ``branch``."""
    found = list_policies(conn, repo)
    return next((p for p in found if branch_matches(p.branch_glob, branch)), None)


def _policy(row: sa.Row[Any]) -> Policy:
    return Policy(
        id=row.id,
        repo=row.repo,
        branch_glob=row.branch_glob,
        duration_s=row.duration_s,
        workers=row.workers,
        fail_on=FailOn(row.fail_on),
        priority=row.priority,
    )
