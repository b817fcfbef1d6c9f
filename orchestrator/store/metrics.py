"""Counts for the metrics endpoint: a few GROUP BY queries, whatever the size of the tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from orchestrator.store.campaigns import CampaignStatus
from orchestrator.store.leases import JobState
from orchestrator.store.schema import campaigns, crash_groups, job_attempts, jobs, repos
from workers.queue import FUZZ_QUEUE

# The values the crash_groups.status check constraint allows (see schema.py).
CRASH_STATUSES = ("open", "fixed", "flaky", "wontfix", "duplicate")


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the metrics endpoint reports about the store, read in one transaction.

    Categories known in advance (every campaign status; every job state of a queue that
    has jobs; every crash status of a registered repository) are present with 0, so a
    dashboard sees a count fall to zero instead of a series that stops.
    """

    executions: Mapping[str, int] = field(default_factory=dict)  # repo -> executions
    jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (queue, state)
    crash_groups: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (repo, status)
    crash_groups_by_kind: Mapping[str, int] = field(default_factory=dict)
    campaigns: Mapping[str, int] = field(default_factory=dict)  # status -> campaigns
    repositories: int = 0

    @property
    def total_executions(self) -> int:
        """Executions over every repository."""
        return sum(self.executions.values())


def snapshot(conn: sa.Connection) -> MetricsSnapshot:
    """Read every count the metrics endpoint exposes."""
    repo_names = list(conn.execute(sa.select(repos.c.name)).scalars())
    return MetricsSnapshot(
        executions=_executions(conn, repo_names),
        jobs=_jobs(conn),
        crash_groups=_crash_groups(conn, repo_names),
        crash_groups_by_kind=_counts(conn, crash_groups.c.kind),
        campaigns={
            **dict.fromkeys((s.value for s in CampaignStatus), 0),
            **_counts(conn, campaigns.c.status),
        },
        repositories=len(repo_names),
    )


def _executions(conn: sa.Connection, repo_names: Iterable[str]) -> dict[str, int]:
    """Executions reported by every fuzz attempt's outcome, per repository.

    Counted per attempt, not per job: an attempt whose outcome lost to another attempt's
    (at-least-once delivery) still ran its executions. Only outcomes count, never the
    heartbeat samples of running attempts: a sample's ``execs`` restarts at zero with each
    engine run of a job, so adding samples would make this counter go backwards.
    """
    # #>> on PostgreSQL, json_extract on SQLite; a missing key is NULL and sums as nothing.
    execs = sa.cast(job_attempts.c.outcome_data[("stats", "execs")].as_string(), sa.BigInteger)
    query = (
        sa.select(campaigns.c.repo, sa.cast(sa.func.sum(execs), sa.BigInteger))
        .select_from(
            job_attempts.join(jobs, jobs.c.id == job_attempts.c.job_id).join(
                campaigns, campaigns.c.id == jobs.c.campaign_id
            )
        )
        .where(jobs.c.queue == FUZZ_QUEUE, job_attempts.c.outcome.is_not(None))
        .group_by(campaigns.c.repo)
    )
    totals = dict.fromkeys(repo_names, 0)
    for repo, total in conn.execute(query):
        totals[repo] = int(total or 0)
    return totals


def _jobs(conn: sa.Connection) -> dict[tuple[str, str], int]:
    counts = _counts(conn, jobs.c.queue, jobs.c.state)
    queues = {queue for queue, _state in counts}
    return {**{(q, s.value): 0 for q in queues for s in JobState}, **counts}


def _crash_groups(conn: sa.Connection, repo_names: Iterable[str]) -> dict[tuple[str, str], int]:
    counts = _counts(conn, crash_groups.c.repo, crash_groups.c.status)
    return {**{(r, s): 0 for r in repo_names for s in CRASH_STATUSES}, **counts}


def _counts(conn: sa.Connection, *columns: sa.Column[Any]) -> dict[Any, int]:
    """Rows per value of ``columns``: keyed by the value, or by the tuple of values."""
    query = sa.select(*columns, sa.func.count()).group_by(*columns)
    counts: dict[Any, int] = {}
    for row in conn.execute(query):
        *key, count = row
        counts[key[0] if len(key) == 1 else tuple(key)] = int(count)
    return counts
