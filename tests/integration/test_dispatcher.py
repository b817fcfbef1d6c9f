"""The dispatcher on a real store and the stub broker: fair share, leases, re-dispatch."""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from orchestrator.dispatcher import Dispatcher
from orchestrator.registry import Registry
from orchestrator.settings import Timings
from orchestrator.store import campaigns, leases
from orchestrator.store.campaigns import FailOn
from orchestrator.store.database import Database
from tests.support import fixture_repos
from workers.contract import JobSpec
from workers.git import Git
from workers.queue import FUZZ_QUEUE
from workers.storage.memory import MemoryObjectStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Database, Registry, StubBroker, Clock]:
    database = Database.open(f"sqlite:///{tmp_path / 'd.db'}", upgrade=True)
    clock = Clock()
    registry = Registry(
        database, MemoryObjectStore(), Git(allow_local=True), tmp_path / "git",
        allow_local=True, clock=clock,
    )  # fmt: skip
    registry.add(str(fixture_repos.mixed_tests(tmp_path).path), name="mixed")
    broker = StubBroker()
    broker.declare_queue(FUZZ_QUEUE)
    return database, registry, broker, clock


def _campaign(database: Database, registry: Registry, clock: Clock, priority: int) -> str:
    commit = registry.resolve("mixed", "main")
    with database.transaction() as conn:
        record = campaigns.create_campaign(
            conn, campaign_id=f"cmp-p{priority}", repo="mixed", branch="main", commit=commit,
            duration_s=600, workers=4, fail_on=FailOn.OPEN, priority=priority, now=clock(),
        )  # fmt: skip
    return record.id


def _jobs(database: Database, campaign_id: str) -> list[leases.JobRecord]:
    with database.transaction() as conn:
        return leases.campaign_jobs(conn, campaign_id)


def test_a_fleet_is_shared_between_campaigns_by_priority(
    setup: tuple[Database, Registry, StubBroker, Clock],
) -> None:
    database, registry, broker, clock = setup
    dispatcher = Dispatcher(database, broker, registry, Timings(), clock, fleet_slots=4)
    high, low = _campaign(database, registry, clock, 2), _campaign(database, registry, clock, 0)
    dispatcher.start(high)
    dispatcher.start(low)
    dispatcher.tick()
    # Priorities 2 and 0 weigh 3:1; four slots in all.
    assert (len(_jobs(database, high)), len(_jobs(database, low))) == (3, 1)
    assert broker.queues[FUZZ_QUEUE].qsize() == 4
    dispatcher.tick()  # the fleet is full: nothing more until jobs end
    assert broker.queues[FUZZ_QUEUE].qsize() == 4


def test_without_a_fleet_size_each_campaign_keeps_its_workers_busy(
    setup: tuple[Database, Registry, StubBroker, Clock],
) -> None:
    database, registry, broker, clock = setup
    dispatcher = Dispatcher(database, broker, registry, Timings(), clock)
    first, second = _campaign(database, registry, clock, 2), _campaign(database, registry, clock, 0)
    dispatcher.start(first)
    dispatcher.start(second)
    dispatcher.tick()
    assert (len(_jobs(database, first)), len(_jobs(database, second))) == (4, 4)


def test_a_lost_attempt_is_sent_again_with_the_next_attempt_number(
    setup: tuple[Database, Registry, StubBroker, Clock],
) -> None:
    database, registry, broker, clock = setup
    timings = Timings(lease_seconds=30, heartbeat_seconds=5, max_attempts=2)
    dispatcher = Dispatcher(database, broker, registry, timings, clock, fleet_slots=1)
    campaign = _campaign(database, registry, clock, 0)
    dispatcher.start(campaign)
    dispatcher.tick()
    queue = broker.queues[FUZZ_QUEUE]
    first = JobSpec.from_json(dramatiq.Message.decode(queue.get_nowait()).args[0])
    assert first.attempt == 1
    clock.now += 31  # no started, no heartbeat: the lease runs out
    dispatcher.tick()
    again = JobSpec.from_json(dramatiq.Message.decode(queue.get_nowait()).args[0])
    assert (again.job_id, again.attempt) == (first.job_id, 2)
    clock.now += 31
    dispatcher.tick()  # out of attempts: dead-lettered, and a new job takes the slot
    with database.transaction() as conn:
        assert leases.get_job(conn, first.job_id).state is leases.JobState.DEAD
