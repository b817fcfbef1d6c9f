"""The embedded service: broker, workers and dispatcher in one process (``fuzzorch run``).

The same actors, ingest and dispatcher as a fleet, wired to dramatiq's in-process stub
broker; engines still run in sandboxed child processes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import dramatiq
from dramatiq.brokers.stub import StubBroker

from orchestrator.dispatcher import Dispatcher
from orchestrator.ingest import Ingest, declare_ingest_actor
from orchestrator.registry import Registry
from orchestrator.settings import Settings
from orchestrator.store.database import Database
from orchestrator.worker import ThreadCaches
from workers.queue import (
    FUZZ_QUEUE,
    INGEST_QUEUE,
    TRIAGE_QUEUE,
    declare_fuzz_actor,
    declare_triage_actor,
)
from workers.storage.base import ObjectStore

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_service(
    settings: Settings,
    database: Database,
    objects: ObjectStore,
    registry: Registry,
    *,
    workers: int,
    clock: Callable[[], float],
) -> Iterator[Dispatcher]:
    """Start in-process workers and ingest; yield the dispatcher; stop everything after."""
    broker = StubBroker()
    with contextlib.ExitStack() as exits:
        caches = ThreadCaches(settings, objects, exits)
        beat = settings.timings.heartbeat_seconds
        declare_fuzz_actor(broker, caches, worker_name="embedded", heartbeat_seconds=beat)
        declare_triage_actor(broker, caches, worker_name="embedded", heartbeat_seconds=beat)
        ingest = Ingest(database, clock=clock, lease_seconds=settings.timings.lease_seconds)
        declare_ingest_actor(broker, ingest)
        fuzz_worker = dramatiq.Worker(
            broker, queues={FUZZ_QUEUE}, worker_threads=workers, worker_timeout=100
        )
        fuzz_worker.queue_prefetch = workers  # one message per free thread, no hoarding
        # Triage has threads of its own: re-checks at a campaign's start must not hold up
        # (or dead-letter, while they wait) the fuzz jobs the campaign's budget is for.
        triage_worker = dramatiq.Worker(
            broker, queues={TRIAGE_QUEUE}, worker_threads=workers, worker_timeout=100
        )
        triage_worker.queue_prefetch = workers
        ingest_worker = dramatiq.Worker(
            broker, queues={INGEST_QUEUE}, worker_threads=1, worker_timeout=100
        )
        fuzz_worker.start()
        triage_worker.start()
        ingest_worker.start()
        try:
            yield Dispatcher(
                database, broker, registry, settings.timings, clock,
                triage_runs=settings.triage_runs,
            )  # fmt: skip
            broker.join(INGEST_QUEUE, timeout=30_000)
        finally:
            fuzz_worker.stop()
            triage_worker.stop()
            ingest_worker.stop()
            broker.close()
