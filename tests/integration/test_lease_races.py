"""Concurrent trusted processes racing on the same jobs: one winner per transition.

Each thread uses its own connection and transaction, as two dispatchers or two ingest
consumers would; a barrier lines them up so the UPDATEs really overlap.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from orchestrator.store import leases
from orchestrator.store.database import Database
from orchestrator.store.leases import NewJob

T = TypeVar("T")
THREADS = 8
JOBS = 15


def _race(database: Database, action: Callable[[int, object], T]) -> list[T]:
    barrier = threading.Barrier(THREADS)

    def run(index: int) -> T:
        barrier.wait(timeout=30)
        with database.transaction() as conn:
            return action(index, conn)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def _jobs(database: Database) -> list[str]:
    ids = [f"job-{i}" for i in range(JOBS)]
    with database.transaction() as conn:
        leases.create_jobs(
            conn, [NewJob(id=i, queue="fuzz", spec={}, max_attempts=5) for i in ids], now=0.0
        )
    return ids


def test_two_dispatchers_never_dispatch_the_same_attempt(database: Database) -> None:
    for job_id in _jobs(database):
        results = _race(
            database,
            lambda _i, conn, job_id=job_id: leases.dispatch(
                conn,
                job_id,
                expected_attempt=0,
                now=0.0,
                lease_seconds=10,  # type: ignore[arg-type]
            ),
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, results
        with database.transaction() as conn:
            assert leases.get_job(conn, job_id).attempt == 1


def test_two_reconcilers_reclaim_a_lost_attempt_once(database: Database) -> None:
    ids = _jobs(database)
    with database.transaction() as conn:
        for job_id in ids:
            leases.dispatch(conn, job_id, expected_attempt=0, now=0.0, lease_seconds=10)
    for job_id in ids:
        results = _race(
            database,
            lambda _i, conn, job_id=job_id: leases.reclaim(
                conn,
                job_id,
                expected_attempt=1,
                now=50.0,
                lease_seconds=10,  # type: ignore[arg-type]
            ),
        )
        leases_granted = [r.lease for r in results if r.lease is not None]
        assert len(leases_granted) == 1, results
        assert leases_granted[0].attempt == 2


def test_only_the_first_outcome_of_a_job_is_recorded(database: Database) -> None:
    ids = _jobs(database)
    with database.transaction() as conn:
        for job_id in ids:
            leases.dispatch(conn, job_id, expected_attempt=0, now=0.0, lease_seconds=10)
            leases.reclaim(conn, job_id, expected_attempt=1, now=20.0, lease_seconds=10)
    tally: Counter[bool] = Counter()
    for job_id in ids:
        # Threads 0-3 report attempt 1, threads 4-7 attempt 2, each with its own data.
        results = _race(
            database,
            lambda i, conn, job_id=job_id: leases.record_outcome(
                conn,  # type: ignore[arg-type]
                job_id,
                attempt=1 + i // 4,
                outcome="ok",
                data={"thread": i},
                now=30.0,
            ),
        )
        tally.update(results)
        firsts = [i for i, first in enumerate(results) if first]
        assert len(firsts) == 1, results
        with database.transaction() as conn:
            job = leases.get_job(conn, job_id)
        assert job.outcome_data == {"thread": firsts[0]}
        assert job.outcome_attempt == 1 + firsts[0] // 4
    assert tally[True] == JOBS
