"""The HTTP API in process, on real adapters: a store database, an object store, a broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient

from orchestrator.dispatcher import Dispatcher
from orchestrator.registry import Registry
from orchestrator.secretbox import SecretBox, generate_key, parse_key
from orchestrator.server.app import Services, create_app
from orchestrator.settings import Timings
from orchestrator.store import tokens
from orchestrator.store.database import Database
from workers.git import Git
from workers.queue import FUZZ_QUEUE, TRIAGE_QUEUE
from workers.storage.base import ObjectStore
from workers.storage.memory import MemoryObjectStore


@dataclass
class Api:
    """A test client of the app, its services and one token per role."""

    client: TestClient
    services: Services
    secrets: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        """The Authorization header of the token with ``role``."""
        return {"Authorization": f"Bearer {self.secrets[role]}"}


def build_services(
    tmp_path: Path,
    database: Database,
    *,
    allow_local: bool = True,
    objects: ObjectStore | None = None,
    secret_key: bool = True,
) -> tuple[Services, dict[str, str]]:
    """Services over ``database``, with a viewer, a triager and an admin token."""
    objects = objects or MemoryObjectStore()
    registry = Registry(
        database, objects, Git(allow_local=allow_local), tmp_path / "git",
        allow_local=allow_local, clock=time.time,
    )  # fmt: skip
    broker = StubBroker()
    for queue in (FUZZ_QUEUE, TRIAGE_QUEUE):
        broker.declare_queue(queue)
    dispatcher = Dispatcher(database, broker, registry, Timings(), time.time)
    secrets = {}
    with database.transaction() as conn:
        for role in tokens.Role:
            _record, secrets[role.value] = tokens.create_token(
                conn, role=role, name=f"{role.value}-token", now=time.time()
            )
    box = SecretBox(parse_key(generate_key())) if secret_key else None
    services = Services(
        database, registry, dispatcher, time.time, lambda: None, objects=objects, broker=broker,
        secret_box=box,
    )  # fmt: skip
    return services, secrets


@contextmanager
def running_api(tmp_path: Path, database: Database, **options: object) -> Iterator[Api]:
    """A TestClient of the app for the block."""
    services, secrets = build_services(tmp_path, database, **options)  # type: ignore[arg-type]
    with TestClient(create_app(services)) as client:
        yield Api(client, services, secrets)
