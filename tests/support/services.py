"""Fixtures for the real services the tests talk to: PostgreSQL and Redis.

A test that needs a service it cannot reach fails under ``CI=true`` and skips only on a
developer's machine, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "FUZZORCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FUZZORCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    """True when running in CI, where a missing service is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_unavailable(what: str, why: str) -> NoReturn:
    """Fail in CI, skip elsewhere: a test cannot run without a service it needs."""
    message = f"{what} is not reachable ({why}); ./scripts/test starts or checks it"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    """Create a PostgreSQL database of our own; yield its URL; drop it afterwards."""
    parts = urlsplit(POSTGRES_ADMIN_URL)
    if not tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        service_unavailable("PostgreSQL", POSTGRES_ADMIN_URL)
    name = f"fuzzorch_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_unavailable("PostgreSQL", str(exc).splitlines()[0])
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session's own, dropped at the end."""
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL, after checking that it answers."""
    parts = urlsplit(REDIS_URL)
    if not tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 6379):
        service_unavailable("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix no other user of the shared Redis has; its keys are deleted after."""
    import redis

    namespace = f"fuzzorch-test-{secrets.token_hex(6)}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
