"""The embedded service: broker, workers and dispatcher in one process (``fuzzorch run``).

The same actors, ingest and dispatcher as a fleet, wired to dramatiq's in-process stub
broker; engines still run in sandboxed child processes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import dramatiq
from dramatiq.brokers.stub import StubBroker

from orchestrator.adapters import make_git
from orchestrator.dispatcher import Dispatcher
from orchestrator.ingest import Ingest, declare_ingest_actor
from orchestrator.registry import Registry
from orchestrator.settings import Settings
from orchestrator.store.database import Database
from workers.envcache import EnvironmentCache
from workers.fuzzjob import WorkerCaches
from workers.queue import FUZZ_QUEUE, INGEST_QUEUE, declare_fuzz_actor
from workers.sandbox import Sandbox
from workers.storage.base import ObjectStore
from workers.uidpool import harness_uid
from workers.workspace import Workspaces

logger = logging.getLogger(__name__)


class ThreadCaches:
    """Worker caches per thread: shared folders, but each thread its own sandbox uid."""

    def __init__(
        self, settings: Settings, objects: ObjectStore, exits: contextlib.ExitStack
    ) -> None:
        self.settings = settings
        self.objects = objects
        self.exits = exits
        self.root = settings.home / "worker"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._environments: EnvironmentCache | None = None
        self._workspaces: Workspaces | None = None

    def __call__(self) -> WorkerCaches:
        caches: WorkerCaches | None = getattr(self._local, "caches", None)
        if caches is None:
            with self._lock:
                uid = self.exits.enter_context(harness_uid())
                sandbox = Sandbox(scratch_root=self.root / "scratch", harness_uid=uid)
                workspaces = self._workspaces = self._workspaces or Workspaces(
                    make_git(self.settings, embedded=True), self.root / "git"
                )
                # Builds run in the first thread's sandbox; every thread reads the results.
                environments = self._environments = self._environments or EnvironmentCache(
                    self.root / "envs", sandbox, build_env=self.settings.build_env
                )
            caches = WorkerCaches(
                store=self.objects,
                workspaces=workspaces,
                environments=environments,
                sandbox=sandbox,
                root=self.root,
            )
            self._local.caches = caches
        return caches


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
        declare_fuzz_actor(
            broker,
            ThreadCaches(settings, objects, exits),
            worker_name="embedded",
            heartbeat_seconds=settings.timings.heartbeat_seconds,
        )
        ingest = Ingest(database, clock=clock, lease_seconds=settings.timings.lease_seconds)
        declare_ingest_actor(broker, ingest)
        fuzz_worker = dramatiq.Worker(
            broker, queues={FUZZ_QUEUE}, worker_threads=workers, worker_timeout=100
        )
        fuzz_worker.queue_prefetch = workers  # one message per free thread, no hoarding
        ingest_worker = dramatiq.Worker(
            broker, queues={INGEST_QUEUE}, worker_threads=1, worker_timeout=100
        )
        fuzz_worker.start()
        ingest_worker.start()
        try:
            yield Dispatcher(database, broker, registry, settings.timings, clock)
            broker.join(INGEST_QUEUE, timeout=30_000)
        finally:
            fuzz_worker.stop()
            ingest_worker.stop()
            broker.close()
