"""The metrics snapshot on SQLite and PostgreSQL, and queue depths on a real Redis server."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from orchestrator.broker import make_broker
from orchestrator.metrics import queue_depth, render
from orchestrator.store import grouping, leases
from orchestrator.store.campaigns import CampaignStatus, FailOn, create_campaign, transition
from orchestrator.store.crashes import Sighting, record_sighting
from orchestrator.store.database import Database
from orchestrator.store.leases import NewJob, StatSample
from orchestrator.store.metrics import MetricsSnapshot, snapshot
from orchestrator.store.repos import add_repo
from workers.contract import CrashReport
from workers.queue import FUZZ_QUEUE, TRIAGE_QUEUE

SHA = "a" * 40
BIG = 5_000_000_000  # more than a 32-bit integer holds


def _crash(signature: str, kind: str) -> CrashReport:
    return CrashReport(
        signature=signature, canonical=f"{kind}|{signature}", kind=kind, exception_type=None,
        message=None, title=f"{kind} {signature}", frames=("pkg/a.py:f",), stack=(),
        testcase_key=f"crashes/web/{signature}", found_after_s=1.0,
    )  # fmt: skip


def _job(job_id: str, campaign_id: str, queue: str = FUZZ_QUEUE) -> NewJob:
    return NewJob(id=job_id, queue=queue, spec={}, max_attempts=3, campaign_id=campaign_id)


def _finish(database: Database, job_id: str, data: dict[str, Any], attempt: int = 1) -> None:
    with database.transaction() as conn:
        leases.dispatch(conn, job_id, expected_attempt=attempt - 1, now=10.0, lease_seconds=60)
        leases.record_outcome(conn, job_id, attempt=attempt, outcome="ok", data=data, now=20.0)


def _populate(database: Database) -> None:
    with database.transaction() as conn:
        for name in ("web", "idle"):
            add_repo(conn, name=name, source=f"https://example.com/{name}.git",
                     default_branch="main", head_commit=SHA, now=1.0)  # fmt: skip
        for campaign_id, repo in (("c1", "web"), ("c2", "web"), ("c3", "idle")):
            create_campaign(conn, campaign_id=campaign_id, repo=repo, branch="main", commit=SHA,
                            duration_s=60, workers=2, fail_on=FailOn.NEW, now=2.0)  # fmt: skip
        transition(conn, "c1", from_=(CampaignStatus.QUEUED,), to=CampaignStatus.RUNNING, now=3.0)
        transition(conn, "c3", from_=(CampaignStatus.QUEUED,), to=CampaignStatus.CANCELLED,
                   now=3.0)  # fmt: skip
        leases.create_jobs(
            conn,
            [_job("f1", "c1"), _job("f2", "c1"), _job("f3", "c1"), _job("f4", "c2"),
             _job("f5", "c1"), _job("f6", "c1"), _job("t1", "c1", TRIAGE_QUEUE)],
            now=5.0,
        )  # fmt: skip
    _finish(database, "f1", {"stats": {"execs": 1000, "wall_s": 1.0}})
    _finish(database, "f2", {"stats": {"execs": BIG}})
    _finish(database, "f3", {"code": "build_failed", "stats": {}})  # no executions
    _finish(database, "t1", {"stats": {"execs": 777}})  # triage runs are not fuzzing
    with database.transaction() as conn:
        # f4: attempt 1 was lost and re-dispatched; both attempts report, both ran.
        leases.dispatch(conn, "f4", expected_attempt=0, now=10.0, lease_seconds=60)
        leases.dispatch(conn, "f4", expected_attempt=1, now=80.0, lease_seconds=60)
        for attempt, execs in ((2, 200), (1, 300)):
            leases.record_outcome(conn, "f4", attempt=attempt, outcome="ok",
                                  data={"stats": {"execs": execs}}, now=90.0)  # fmt: skip
        # f5 is running: its heartbeat samples are not (yet) executions of the counter.
        leases.dispatch(conn, "f5", expected_attempt=0, now=10.0, lease_seconds=60)
        leases.mark_started(conn, "f5", attempt=1, worker="w", now=11.0, lease_seconds=60)
        leases.record_stats(conn, "f5", attempt=1, samples=[StatSample(1.0, 50, 1, 1, 1)],
                            now=12.0)  # fmt: skip
        where = Sighting(repo="web", campaign_id="c1", job_id="f1", attempt=1, commit=SHA,
                         harness="fuzz_a.py", found_after_s=1.0, now=20.0)  # fmt: skip
        groups = [
            record_sighting(conn, _crash(signature, kind), where)[0]
            for signature, kind in (("s1", "exception"), ("s2", "exception"), ("s3", "timeout"))
        ]
        record_sighting(conn, _crash("s1", "exception"), where)  # seen again: same group
        grouping.set_status(conn, groups[2], "wontfix")


def test_the_snapshot_counts_what_the_store_holds(database: Database) -> None:
    _populate(database)
    with database.transaction() as conn:
        taken = snapshot(conn)
    assert taken.executions == {"web": 1000 + BIG + 200 + 300, "idle": 0}
    assert taken.total_executions == BIG + 1500
    states = ("pending", "dispatched", "running", "done", "dead", "cancelled")
    assert taken.jobs == {
        **{(q, s): 0 for q in (FUZZ_QUEUE, TRIAGE_QUEUE) for s in states},
        (FUZZ_QUEUE, "done"): 4,
        (FUZZ_QUEUE, "running"): 1,
        (FUZZ_QUEUE, "pending"): 1,
        (TRIAGE_QUEUE, "done"): 1,
    }
    statuses = ("open", "fixed", "flaky", "wontfix", "duplicate")
    assert taken.crash_groups == {
        **{(r, s): 0 for r in ("web", "idle") for s in statuses},
        ("web", "open"): 2,
        ("web", "wontfix"): 1,
    }
    assert taken.crash_groups_by_kind == {"exception": 2, "timeout": 1}
    assert taken.campaigns == {
        **{s.value: 0 for s in CampaignStatus},
        "running": 1,
        "queued": 1,
        "cancelled": 1,
    }
    assert taken.repositories == 2
    text = render(taken, {})
    assert f'fuzzorch_executions_total{{repo="web"}} {BIG + 1500}\n' in text
    assert 'fuzzorch_crash_groups{repo="idle",status="open"} 0\n' in text


def test_an_empty_store_gives_zeros_for_what_is_known(database: Database) -> None:
    with database.transaction() as conn:
        taken = snapshot(conn)
    assert taken == MetricsSnapshot(campaigns={s.value: 0 for s in CampaignStatus})


def _message(queue: str) -> dramatiq.Message[None]:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options={})


def test_queue_depth_reads_the_keys_a_redis_broker_writes(
    redis_url: str, redis_namespace: str
) -> None:
    broker = make_broker(redis_url, namespace=redis_namespace)
    # The fixture deletes every key under its prefix, the neighbour's included.
    neighbour = make_broker(redis_url, namespace=f"{redis_namespace}-other")
    assert isinstance(broker, RedisBroker)
    try:
        for name in ("fuzz", "triage"):
            broker.declare_queue(name)
        neighbour.declare_queue("fuzz")
        for _ in range(3):
            broker.enqueue(_message("fuzz"))
        neighbour.enqueue(_message("fuzz"))  # another installation's backlog is not ours
        assert queue_depth(broker) == {"fuzz": 3, "triage": 0}

        consumer = broker.consume("fuzz", prefetch=1, timeout=1000)
        try:
            taken = next(consumer)
            assert taken is not None
            assert queue_depth(broker) == {"fuzz": 2, "triage": 0}  # in flight: not waiting
            consumer.ack(taken)
        finally:
            consumer.close()
        broker.enqueue(_message("fuzz"), delay=60_000)
        assert queue_depth(broker, ["fuzz"]) == {"fuzz": 3}  # a delayed message waits too
    finally:
        broker.close()
        neighbour.close()
