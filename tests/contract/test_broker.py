"""The same message round trip on the in-process stub and on the real Redis server."""

from __future__ import annotations

import threading

import dramatiq
import pytest
import redis

from orchestrator.broker import make_broker
from orchestrator.errors import SettingsError


@pytest.fixture(params=["memory", "redis"])
def broker_setup(request: pytest.FixtureRequest) -> tuple[dramatiq.Broker, str, str]:
    """A broker, its Redis namespace and Redis URL (both empty for the stub)."""
    if request.param == "memory":
        return make_broker("memory://"), "", ""
    url = request.getfixturevalue("redis_url")
    namespace = request.getfixturevalue("redis_namespace")
    return make_broker(url, namespace=namespace), namespace, url


def test_a_message_sent_is_processed_by_a_worker(
    broker_setup: tuple[dramatiq.Broker, str, str],
) -> None:
    broker, namespace, redis_url = broker_setup
    received: list[int] = []
    done = threading.Event()

    def record(value: int) -> None:
        received.append(value)
        if len(received) == 3:
            done.set()

    actor = dramatiq.actor(record, broker=broker, queue_name="fuzz", actor_name="record")
    for value in (1, 2, 3):
        actor.send(value)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        assert done.wait(timeout=20), received
    finally:
        worker.stop()
        broker.close()
    assert sorted(received) == [1, 2, 3]
    if namespace:
        # Every key the broker wrote carries our namespace: nothing leaks into shared Redis.
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.keys(f"{namespace}*")
        finally:
            client.close()


def test_an_unknown_broker_url_is_refused_with_the_password_masked() -> None:
    with pytest.raises(SettingsError, match=r"'amqp://u:\*\*\*@h'"):
        make_broker("amqp://u:pw@h")
