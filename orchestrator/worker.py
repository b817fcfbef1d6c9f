"""``fuzzorch worker``: dramatiq worker processes that run fuzz jobs from a shared broker.

A worker holds no database credentials: it reads jobs from the broker, objects from the
store, and reports everything on the ``ingest`` queue. Each thread gets its own sandbox
and harness uid.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from types import FrameType

import dramatiq

from orchestrator.adapters import make_git, open_object_store
from orchestrator.broker import make_broker
from orchestrator.settings import Settings
from workers.envcache import EnvironmentCache
from workers.fuzzjob import WorkerCaches
from workers.queue import (
    FUZZ_QUEUE,
    INGEST_QUEUE,
    TRIAGE_QUEUE,
    declare_fuzz_actor,
    declare_triage_actor,
)
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


def _serve(settings: Settings, threads: int, stop: threading.Event) -> None:
    broker = make_broker(settings.broker_url, namespace=settings.broker_namespace)
    broker.declare_queue(INGEST_QUEUE)
    name = f"{socket.gethostname()}:{os.getpid()}"
    with contextlib.ExitStack() as exits:
        caches = ThreadCaches(settings, open_object_store(settings.storage), exits)
        beat = settings.timings.heartbeat_seconds
        declare_fuzz_actor(broker, caches, worker_name=name, heartbeat_seconds=beat)
        declare_triage_actor(broker, caches, worker_name=name, heartbeat_seconds=beat)
        consumer = dramatiq.Worker(
            broker, queues={FUZZ_QUEUE, TRIAGE_QUEUE} & set(broker.get_declared_queues()),
            worker_threads=threads,
        )  # fmt: skip
        consumer.queue_prefetch = threads  # one message per free thread: none stranded
        consumer.start()
        logger.info("worker %s: %d thread(s) on %s and %s", name, threads, FUZZ_QUEUE, TRIAGE_QUEUE)
        try:
            stop.wait()
        finally:
            consumer.stop()
            broker.close()


def _process(settings: Settings, threads: int) -> None:
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _serve(settings, threads, stop)


def run_worker(settings: Settings, *, processes: int, threads: int) -> None:
    """Run ``processes`` worker processes of ``threads`` threads until SIGTERM or SIGINT."""
    if processes == 1:
        _process(settings, threads)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_process, args=(settings, threads), name=f"fuzzorch-worker-{i}")
        for i in range(processes)
    ]
    for child in children:
        child.start()

    def forward(number: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, number)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
