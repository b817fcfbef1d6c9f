"""Job leases: dispatch, start, heartbeat, outcome, reclaim and dead-letter.

Every transition is a single UPDATE guarded by the job's attempt number (and, for a
reclaim, by its deadline still being past), so two trusted processes racing on the same job
cannot both win: the loser's UPDATE matches no row. Execution is at-least-once; the first
outcome recorded for a job wins, and each attempt's own outcome is kept beside it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.errors import NotFoundError
from orchestrator.store.schema import job_attempts, job_stats, jobs
from orchestrator.store.sql import insert_ignoring_duplicates


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"
    CANCELLED = "cancelled"


LIVE = (JobState.DISPATCHED, JobState.RUNNING)
UNFINISHED = (JobState.PENDING, JobState.DISPATCHED, JobState.RUNNING)


@dataclass(frozen=True)
class NewJob:
    """A job as planned, before it is ever dispatched."""

    id: str
    queue: str
    spec: Mapping[str, Any]
    max_attempts: int
    campaign_id: str | None = None
    harness: str | None = None


@dataclass(frozen=True)
class Lease:
    """Attempt ``attempt`` of ``job_id`` is out, and counts as lost after ``deadline``."""

    job_id: str
    attempt: int
    deadline: float


@dataclass(frozen=True)
class JobRecord:
    """A job as the store holds it."""

    id: str
    campaign_id: str | None
    queue: str
    harness: str | None
    spec: Mapping[str, Any]
    state: JobState
    attempt: int
    max_attempts: int
    lease_owner: str | None
    deadline: float | None
    heartbeat_at: float | None
    outcome: str | None
    outcome_attempt: int | None
    outcome_data: Mapping[str, Any] | None


@dataclass(frozen=True)
class StatSample:
    """One point of a job's statistics time series."""

    elapsed_s: float
    execs: int
    coverage: int
    features: int
    corpus_units: int


def create_jobs(conn: sa.Connection, planned: Iterable[NewJob], *, now: float) -> None:
    """Insert planned jobs in state ``pending``."""
    rows = [
        {
            "id": job.id,
            "campaign_id": job.campaign_id,
            "queue": job.queue,
            "harness": job.harness,
            "spec": dict(job.spec),
            "state": JobState.PENDING.value,
            "attempt": 0,
            "max_attempts": job.max_attempts,
            "created_at": now,
        }
        for job in planned
    ]
    if rows:
        conn.execute(jobs.insert(), rows)


def get_job(conn: sa.Connection, job_id: str) -> JobRecord:
    """The job ``job_id``; NotFoundError if there is none."""
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no job {job_id!r}")
    return _record(row)


def campaign_jobs(conn: sa.Connection, campaign_id: str) -> list[JobRecord]:
    """Every job of a campaign, oldest first."""
    query = (
        sa.select(jobs)
        .where(jobs.c.campaign_id == campaign_id)
        .order_by(jobs.c.created_at, jobs.c.id)
    )
    return [_record(row) for row in conn.execute(query).mappings()]


def pending_jobs(conn: sa.Connection, *, queue: str | None = None, limit: int = 100) -> list[str]:
    """Ids of jobs never dispatched, oldest first."""
    query = sa.select(jobs.c.id).where(jobs.c.state == JobState.PENDING.value)
    if queue is not None:
        query = query.where(jobs.c.queue == queue)
    query = query.order_by(jobs.c.created_at, jobs.c.id).limit(limit)
    return list(conn.execute(query).scalars())


def dispatch(
    conn: sa.Connection, job_id: str, *, expected_attempt: int, now: float, lease_seconds: float
) -> Lease | None:
    """Record attempt ``expected_attempt + 1`` as dispatched; None if someone else moved first."""
    return _advance(
        conn,
        job_id,
        expected_attempt=expected_attempt,
        now=now,
        lease_seconds=lease_seconds,
        guard=jobs.c.state.in_([s.value for s in UNFINISHED]),
    )


def create_and_dispatch(
    conn: sa.Connection, job: NewJob, *, now: float, lease_seconds: float
) -> Lease | None:
    """Write a new job and lease its first attempt, in the caller's transaction."""
    create_jobs(conn, [job], now=now)
    return dispatch(conn, job.id, expected_attempt=0, now=now, lease_seconds=lease_seconds)


def expired_leases(conn: sa.Connection, *, now: float, limit: int = 100) -> list[Lease]:
    """Live attempts whose deadline passed without a heartbeat or an outcome."""
    query = (
        sa.select(jobs.c.id, jobs.c.attempt, jobs.c.deadline)
        .where(jobs.c.state.in_([s.value for s in LIVE]), jobs.c.deadline < now)
        .order_by(jobs.c.deadline)
        .limit(limit)
    )
    return [Lease(row.id, row.attempt, row.deadline) for row in conn.execute(query)]


@dataclass(frozen=True)
class Reclaimed:
    """What a reclaim did: a new lease, a dead letter, or nothing (someone moved first)."""

    lease: Lease | None = None
    dead: bool = False


def reclaim(
    conn: sa.Connection, job_id: str, *, expected_attempt: int, now: float, lease_seconds: float
) -> Reclaimed:
    """Re-dispatch a lost attempt, or dead-letter the job once its attempts are used up."""
    expired = sa.and_(jobs.c.state.in_([s.value for s in LIVE]), jobs.c.deadline < now)
    dead = conn.execute(
        jobs.update()
        .where(
            jobs.c.id == job_id,
            jobs.c.attempt == expected_attempt,
            jobs.c.attempt >= jobs.c.max_attempts,
            expired,
        )
        .values(state=JobState.DEAD.value, finished_at=now, deadline=None, lease_owner=None)
    )
    if dead.rowcount == 1:
        return Reclaimed(dead=True)
    lease = _advance(
        conn,
        job_id,
        expected_attempt=expected_attempt,
        now=now,
        lease_seconds=lease_seconds,
        guard=expired,
    )
    return Reclaimed(lease=lease)


def _advance(
    conn: sa.Connection,
    job_id: str,
    *,
    expected_attempt: int,
    now: float,
    lease_seconds: float,
    guard: sa.ColumnElement[bool],
) -> Lease | None:
    deadline = now + lease_seconds
    result = conn.execute(
        jobs.update()
        .where(
            jobs.c.id == job_id,
            jobs.c.attempt == expected_attempt,
            jobs.c.attempt < jobs.c.max_attempts,
            guard,
        )
        .values(
            attempt=jobs.c.attempt + 1,
            state=JobState.DISPATCHED.value,
            deadline=deadline,
            lease_owner=None,
            heartbeat_at=None,
        )
    )
    if result.rowcount != 1:
        return None
    attempt = expected_attempt + 1
    conn.execute(job_attempts.insert().values(job_id=job_id, attempt=attempt, dispatched_at=now))
    return Lease(job_id, attempt, deadline)


def mark_started(
    conn: sa.Connection,
    job_id: str,
    *,
    attempt: int,
    worker: str,
    now: float,
    lease_seconds: float,
) -> bool:
    """Record that ``worker`` started ``attempt``; False if that attempt is no longer current."""
    conn.execute(
        job_attempts.update()
        .where(job_attempts.c.job_id == job_id, job_attempts.c.attempt == attempt)
        .values(worker=worker, started_at=now, heartbeat_at=now)
    )
    return _extend(conn, job_id, attempt=attempt, worker=worker, now=now, lease=lease_seconds)


def heartbeat(
    conn: sa.Connection,
    job_id: str,
    *,
    attempt: int,
    worker: str,
    now: float,
    lease_seconds: float,
) -> bool:
    """Extend the lease of the current attempt; False if the attempt was superseded or ended."""
    conn.execute(
        job_attempts.update()
        .where(job_attempts.c.job_id == job_id, job_attempts.c.attempt == attempt)
        .values(heartbeat_at=now)
    )
    return _extend(conn, job_id, attempt=attempt, worker=worker, now=now, lease=lease_seconds)


def _extend(
    conn: sa.Connection, job_id: str, *, attempt: int, worker: str, now: float, lease: float
) -> bool:
    result = conn.execute(
        jobs.update()
        .where(
            jobs.c.id == job_id,
            jobs.c.attempt == attempt,
            jobs.c.state.in_([s.value for s in LIVE]),
        )
        .values(
            state=JobState.RUNNING.value,
            lease_owner=worker,
            heartbeat_at=now,
            deadline=now + lease,
        )
    )
    return result.rowcount == 1


def record_outcome(
    conn: sa.Connection,
    job_id: str,
    *,
    attempt: int,
    outcome: str,
    data: Mapping[str, Any],
    now: float,
) -> bool:
    """Keep attempt ``attempt``'s outcome; True if it is the job's first (and so the job's)."""
    known = conn.execute(
        job_attempts.update()
        .where(
            job_attempts.c.job_id == job_id,
            job_attempts.c.attempt == attempt,
            job_attempts.c.outcome.is_(None),
        )
        .values(outcome=outcome, outcome_at=now, outcome_data=dict(data))
    )
    if known.rowcount != 1:
        # Never dispatched (a forged or corrupt message), or this attempt already reported.
        return False
    result = conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.outcome.is_(None))
        .values(
            outcome=outcome,
            outcome_attempt=attempt,
            outcome_data=dict(data),
            finished_at=now,
            deadline=None,
            # A cancelled job stays cancelled; a late outcome of a dead-lettered job revives
            # its result, since a result beats a dead letter.
            state=sa.case(
                (jobs.c.state == JobState.CANCELLED.value, JobState.CANCELLED.value),
                else_=JobState.DONE.value,
            ),
        )
    )
    return result.rowcount == 1


def cancel_jobs(conn: sa.Connection, campaign_id: str, *, now: float) -> int:
    """Cancel every unfinished job of a campaign; return how many were cancelled."""
    result = conn.execute(
        jobs.update()
        .where(
            jobs.c.campaign_id == campaign_id,
            jobs.c.state.in_([s.value for s in UNFINISHED]),
        )
        .values(state=JobState.CANCELLED.value, finished_at=now, deadline=None)
    )
    return result.rowcount


def record_stats(
    conn: sa.Connection, job_id: str, *, attempt: int, samples: Iterable[StatSample], now: float
) -> int:
    """Append statistics samples, ignoring ones already recorded (messages are redelivered)."""
    rows = [
        {
            "job_id": job_id,
            "attempt": attempt,
            "elapsed_s": sample.elapsed_s,
            "execs": sample.execs,
            "coverage": sample.coverage,
            "features": sample.features,
            "corpus_units": sample.corpus_units,
            "recorded_at": now,
        }
        for sample in samples
    ]
    return insert_ignoring_duplicates(conn, job_stats, rows)


def stats(conn: sa.Connection, job_id: str, *, attempt: int) -> list[StatSample]:
    """A job attempt's statistics samples in time order."""
    query = (
        sa.select(job_stats)
        .where(job_stats.c.job_id == job_id, job_stats.c.attempt == attempt)
        .order_by(job_stats.c.elapsed_s)
    )
    return [
        StatSample(r.elapsed_s, r.execs, r.coverage, r.features, r.corpus_units)
        for r in conn.execute(query)
    ]


def _record(row: sa.RowMapping) -> JobRecord:
    return JobRecord(
        id=row["id"],
        campaign_id=row["campaign_id"],
        queue=row["queue"],
        harness=row["harness"],
        spec=row["spec"],
        state=JobState(row["state"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        lease_owner=row["lease_owner"],
        deadline=row["deadline"],
        heartbeat_at=row["heartbeat_at"],
        outcome=row["outcome"],
        outcome_attempt=row["outcome_attempt"],
        outcome_data=row["outcome_data"],
    )
