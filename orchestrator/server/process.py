"""The server process: HTTP API, the dispatcher loop and the ingest consumers together."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import dramatiq
import uvicorn

from orchestrator.adapters import make_git, open_object_store
from orchestrator.broker import make_broker
from orchestrator.deliveries import start_pushed_campaigns
from orchestrator.dispatcher import Dispatcher
from orchestrator.ingest import Ingest, declare_ingest_actor
from orchestrator.registry import Registry
from orchestrator.secretbox import SecretBox
from orchestrator.server.app import Services, create_app
from orchestrator.settings import Settings
from orchestrator.store.database import Database
from workers.queue import FUZZ_QUEUE, INGEST_QUEUE, TRIAGE_QUEUE

logger = logging.getLogger(__name__)

INGEST_THREADS = 4


class DispatchLoop:
    """Runs ``Dispatcher.tick`` every reconcile period, or sooner when woken."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        period: float,
        tasks: tuple[Callable[[], object], ...] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.period = period
        self.tasks = tasks  # run after each tick (webhook deliveries)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)

    def start(self) -> None:
        """Start ticking in a background thread."""
        self._thread.start()

    def wake(self) -> None:
        """Tick now (a campaign was started)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current tick."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for step in (self.dispatcher.tick, *self.tasks):
                try:
                    step()
                except Exception:  # one bad tick must not stop the service
                    logger.exception("dispatcher step %s failed", getattr(step, "__name__", step))
            self._wake.wait(self.period)
            self._wake.clear()


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[Services]:
    """Everything the server needs, started; stopped when the block ends."""
    database = Database.open(
        settings.database_url, upgrade=settings.database_url.startswith("sqlite")
    )
    objects = open_object_store(settings.storage)
    registry = Registry(
        database, objects, make_git(settings, embedded=False), settings.home / "git",
        allow_local=settings.allow_local_repos, clock=time.time,
    )  # fmt: skip
    broker = make_broker(settings.broker_url, namespace=settings.broker_namespace)
    for queue in (FUZZ_QUEUE, TRIAGE_QUEUE):
        broker.declare_queue(queue)
    ingest = Ingest(database, clock=time.time, lease_seconds=settings.timings.lease_seconds)
    declare_ingest_actor(broker, ingest)
    consumer = dramatiq.Worker(broker, queues={INGEST_QUEUE}, worker_threads=INGEST_THREADS)
    dispatcher = Dispatcher(
        database, broker, registry, settings.timings, time.time,
        fleet_slots=settings.fleet_slots, triage_runs=settings.triage_runs,
    )  # fmt: skip

    def pushed() -> int:
        return start_pushed_campaigns(database, registry, dispatcher, time.time)

    loop = DispatchLoop(dispatcher, settings.timings.reconcile_seconds, (pushed,))
    consumer.start()
    loop.start()
    try:
        yield Services(
            database, registry, dispatcher, time.time, loop.wake, objects=objects, broker=broker,
            secret_box=SecretBox(settings.secret_key) if settings.secret_key else None,
            secure_cookies=settings.cookie_secure,
        )  # fmt: skip
    finally:
        loop.stop()
        consumer.stop()
        broker.close()
        database.dispose()


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Run the server until interrupted."""
    with running_services(settings) as services:
        app = create_app(services)
        logger.info("fuzzorch server on http://%s:%d", host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
