"""The SQL store suite: every case runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.store import audit, leases, repos, tokens
from orchestrator.store.database import Database
from orchestrator.store.leases import JobState, NewJob, StatSample

SHA = "a" * 40


def _job(job_id: str = "job-1", max_attempts: int = 3) -> NewJob:
    return NewJob(id=job_id, queue="fuzz", spec={"harness": "fuzz_x.py"}, max_attempts=max_attempts)


def test_a_job_goes_from_pending_to_done(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=100.0)
        assert leases.pending_jobs(conn) == ["job-1"]
        lease = leases.dispatch(conn, "job-1", expected_attempt=0, now=100.0, lease_seconds=30)
        assert lease == leases.Lease("job-1", 1, 130.0)
        assert leases.pending_jobs(conn) == []
        assert leases.mark_started(
            conn, "job-1", attempt=1, worker="w1", now=101.0, lease_seconds=30
        )
        assert leases.heartbeat(conn, "job-1", attempt=1, worker="w1", now=120.0, lease_seconds=30)
        job = leases.get_job(conn, "job-1")
        assert (job.state, job.lease_owner, job.deadline) == (JobState.RUNNING, "w1", 150.0)
        assert leases.record_outcome(
            conn, "job-1", attempt=1, outcome="ok", data={"execs": 5}, now=130.0
        )
        job = leases.get_job(conn, "job-1")
    assert (job.state, job.outcome, job.outcome_attempt, job.outcome_data) == (
        JobState.DONE,
        "ok",
        1,
        {"execs": 5},
    )
    assert job.deadline is None


def test_a_second_dispatch_of_the_same_attempt_loses(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        first = leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        second = leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
    assert first is not None
    assert second is None


def test_a_live_lease_is_not_reclaimed_before_its_deadline(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        assert leases.expired_leases(conn, now=5.0) == []
        assert (
            leases.reclaim(conn, "job-1", expected_attempt=1, now=5.0, lease_seconds=10)
            == leases.Reclaimed()
        )
        assert leases.get_job(conn, "job-1").attempt == 1


def test_a_heartbeat_keeps_the_lease_alive(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        leases.mark_started(conn, "job-1", attempt=1, worker="w", now=1.0, lease_seconds=10)
        leases.heartbeat(conn, "job-1", attempt=1, worker="w", now=9.0, lease_seconds=10)
        assert leases.expired_leases(conn, now=15.0) == []
        assert [lease.job_id for lease in leases.expired_leases(conn, now=19.5)] == ["job-1"]


def test_a_lost_attempt_is_redispatched_and_its_late_messages_are_ignored(
    database: Database,
) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        leases.mark_started(conn, "job-1", attempt=1, worker="w1", now=1.0, lease_seconds=10)
        (expired,) = leases.expired_leases(conn, now=20.0)
        assert expired.attempt == 1
        result = leases.reclaim(conn, "job-1", expected_attempt=1, now=20.0, lease_seconds=10)
        assert result.lease == leases.Lease("job-1", 2, 30.0)
        # The first worker was only slow: its heartbeat must not steal attempt 2's lease.
        assert not leases.heartbeat(
            conn, "job-1", attempt=1, worker="w1", now=21.0, lease_seconds=10
        )
        assert leases.mark_started(
            conn, "job-1", attempt=2, worker="w2", now=21.0, lease_seconds=10
        )
        assert leases.get_job(conn, "job-1").lease_owner == "w2"


def test_the_first_outcome_of_a_job_wins_and_every_attempts_outcome_is_kept(
    database: Database,
) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        leases.reclaim(conn, "job-1", expected_attempt=1, now=11.0, lease_seconds=10)
        assert leases.record_outcome(
            conn, "job-1", attempt=2, outcome="crashed", data={"n": 2}, now=12.0
        )
        # Attempt 1 finishes later: kept for its crashes and corpus, but not the job's result.
        assert not leases.record_outcome(
            conn, "job-1", attempt=1, outcome="ok", data={"n": 1}, now=13.0
        )
        # A redelivered outcome message changes nothing.
        assert not leases.record_outcome(
            conn, "job-1", attempt=2, outcome="ok", data={"n": 3}, now=14.0
        )
        job = leases.get_job(conn, "job-1")
        per_attempt = conn.execute(
            sa.text("SELECT attempt, outcome FROM job_attempts WHERE job_id = 'job-1' ORDER BY 1")
        ).all()
    assert (job.outcome, job.outcome_attempt, job.outcome_data) == ("crashed", 2, {"n": 2})
    assert [tuple(row) for row in per_attempt] == [(1, "ok"), (2, "crashed")]


def test_an_outcome_for_an_attempt_never_dispatched_is_refused(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        assert not leases.record_outcome(conn, "job-1", attempt=7, outcome="ok", data={}, now=1.0)
        assert not leases.record_outcome(conn, "nope", attempt=1, outcome="ok", data={}, now=1.0)
        assert leases.get_job(conn, "job-1").outcome is None


def test_a_job_is_dead_lettered_after_its_last_attempt(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job(max_attempts=2)], now=0.0)
        leases.dispatch(conn, "job-1", expected_attempt=0, now=0.0, lease_seconds=10)
        second = leases.reclaim(conn, "job-1", expected_attempt=1, now=11.0, lease_seconds=10)
        assert second.lease is not None
        assert second.lease.attempt == 2
        third = leases.reclaim(conn, "job-1", expected_attempt=2, now=22.0, lease_seconds=10)
        assert third == leases.Reclaimed(dead=True)
        job = leases.get_job(conn, "job-1")
        assert (job.state, job.attempt) == (JobState.DEAD, 2)
        assert leases.expired_leases(conn, now=1000.0) == []
        # A result that arrives after all still counts: a result beats a dead letter.
        assert leases.record_outcome(conn, "job-1", attempt=2, outcome="ok", data={}, now=30.0)
        assert leases.get_job(conn, "job-1").state is JobState.DONE


def test_cancelled_jobs_are_neither_dispatched_nor_reclaimed(database: Database) -> None:
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job("a"), _job("b")], now=0.0)
        leases.dispatch(conn, "a", expected_attempt=0, now=0.0, lease_seconds=10)
        conn.execute(sa.text("UPDATE jobs SET campaign_id = NULL"))
        assert leases.cancel_jobs(conn, "no-such-campaign", now=1.0) == 0
    with database.transaction() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO repos (name, source, created_at, updated_at) VALUES ('r', '/r', 0, 0)"
            )
        )
        conn.execute(
            sa.text(
                'INSERT INTO campaigns (id, repo, branch, "commit", status, priority, '
                "duration_s, workers, fail_on, created_at) "
                f"VALUES ('c1', 'r', 'main', '{SHA}', 'running', 0, 60, 1, 'open', 0)"
            )
        )
        conn.execute(sa.text("UPDATE jobs SET campaign_id = 'c1'"))
        assert leases.cancel_jobs(conn, "c1", now=2.0) == 2
        assert leases.dispatch(conn, "b", expected_attempt=0, now=3.0, lease_seconds=10) is None
        assert leases.reclaim(conn, "a", expected_attempt=1, now=30.0, lease_seconds=10) == (
            leases.Reclaimed()
        )
        assert leases.get_job(conn, "a").state is JobState.CANCELLED


def test_stat_samples_are_recorded_once_and_read_in_order(database: Database) -> None:
    samples = [StatSample(2.0, 200, 12, 30, 4), StatSample(1.0, 100, 10, 20, 3)]
    with database.transaction() as conn:
        leases.create_jobs(conn, [_job()], now=0.0)
        assert leases.record_stats(conn, "job-1", attempt=1, samples=samples, now=5.0) == 2
        assert leases.record_stats(conn, "job-1", attempt=1, samples=samples, now=6.0) == 0
        assert leases.stats(conn, "job-1", attempt=1) == [samples[1], samples[0]]


def test_missing_job_error_names_it(database: Database) -> None:
    with database.transaction() as conn, pytest.raises(NotFoundError, match="'job-zz'"):
        leases.get_job(conn, "job-zz")


def test_repositories_are_unique_by_name_and_by_source(database: Database) -> None:
    with database.transaction() as conn:
        repos.add_repo(
            conn,
            name="parser",
            source="/src/parser",
            default_branch="main",
            head_commit=SHA,
            now=1.0,
        )
    with database.transaction() as conn, pytest.raises(ConflictError, match="'parser'"):
        repos.add_repo(
            conn, name="parser", source="/src/other", default_branch=None, head_commit=None, now=2
        )
    with database.transaction() as conn, pytest.raises(ConflictError, match="'/src/parser'"):
        repos.add_repo(
            conn, name="other", source="/src/parser", default_branch=None, head_commit=None, now=2
        )
    with database.transaction() as conn:
        assert [r.name for r in repos.list_repos(conn)] == ["parser"]
        assert repos.find_repo_by_source(conn, "/src/parser") == repos.get_repo(conn, "parser")
        assert repos.find_repo_by_source(conn, "/nowhere") is None
        with pytest.raises(NotFoundError, match="'nope'"):
            repos.get_repo(conn, "nope")


@pytest.mark.parametrize("bad", ["has space", "a/b", "-lead", "UPPER", "", "x" * 65, "a.git"])
def test_repository_names_must_be_slugs(database: Database, bad: str) -> None:
    with database.transaction() as conn, pytest.raises(ValueError, match=repr(bad)[:20]):
        repos.add_repo(conn, name=bad, source="/s", default_branch=None, head_commit=None, now=0)
    with database.transaction() as conn:
        assert repos.list_repos(conn) == []


def test_harnesses_and_skipped_files_are_recorded_per_commit(database: Database) -> None:
    found = repos.HarnessRecord(
        name="fuzz/fuzz_a.py",
        path="fuzz/fuzz_a.py",
        status="found",
        kind="atheris",
        options={"max_len": 64},
    )
    skipped = repos.HarnessRecord(
        name="fuzz/broken.py",
        path="fuzz/broken.py",
        status="skipped",
        reason="syntax-error",
        detail="line 3: invalid syntax",
    )
    with database.transaction() as conn:
        repos.add_repo(conn, name="r", source="/r", default_branch="main", head_commit=SHA, now=0)
        assert repos.record_harnesses(conn, "r", SHA, [found, skipped]) == 2
        assert repos.record_harnesses(conn, "r", SHA, [found]) == 0
        assert repos.harnesses_at(conn, "r", SHA) == [found]
        assert repos.harnesses_at(conn, "r", SHA, include_skipped=True) == [skipped, found]
        assert repos.harnesses_at(conn, "r", "b" * 40) == []


def test_a_found_harness_needs_a_kind_and_a_skipped_file_a_reason(database: Database) -> None:
    bad = repos.HarnessRecord(name="x.py", path="x.py", status="skipped")
    with database.transaction() as conn:
        repos.add_repo(conn, name="r", source="/r", default_branch=None, head_commit=None, now=0)
    with pytest.raises(sa.exc.IntegrityError), database.transaction() as conn:
        repos.record_harnesses(conn, "r", SHA, [bad])


def test_tokens_are_stored_hashed_and_verified(database: Database) -> None:
    with database.transaction() as conn:
        record, secret = tokens.create_token(conn, role=tokens.Role.TRIAGER, name="ci bot", now=1.0)
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert secret.startswith("fzo_")
    assert secret not in stored
    assert stored == tokens.hash_token(secret)
    with database.transaction() as conn:
        verified = tokens.verify_token(conn, secret, now=5.0)
        assert verified is not None
        assert (verified.id, verified.role, verified.last_used_at) == (
            record.id,
            tokens.Role.TRIAGER,
            5.0,
        )
        assert tokens.verify_token(conn, secret + "x", now=5.0) is None
        tokens.revoke_token(conn, record.id, now=6.0)
        assert tokens.verify_token(conn, secret, now=7.0) is None
        with pytest.raises(NotFoundError, match=record.id):
            tokens.revoke_token(conn, record.id, now=8.0)


def test_roles_include_the_ones_below() -> None:
    assert tokens.Role.ADMIN.allows(tokens.Role.TRIAGER)
    assert tokens.Role.TRIAGER.allows(tokens.Role.VIEWER)
    assert not tokens.Role.VIEWER.allows(tokens.Role.TRIAGER)
    with pytest.raises(ValueError, match="'root'"):
        tokens.Role.parse("root")


def test_the_audit_log_pages_newest_first(database: Database) -> None:
    with database.transaction() as conn:
        ids = [
            audit.append(
                conn,
                audit.AuditEntry(actor="alice", action=f"act{i}", at=float(i), detail={"i": i}),
            )
            for i in range(5)
        ]
        first = audit.entries(conn, limit=2)
        second = audit.entries(conn, limit=10, before_id=first[-1].id)
    assert [e.action for e in first] == ["act4", "act3"]
    assert [e.action for e in second] == ["act2", "act1", "act0"]
    assert second[0].detail == {"i": 2}
    assert sorted(ids) == ids
