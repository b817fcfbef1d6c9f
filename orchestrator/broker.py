"""The message broker: dramatiq's StubBroker in-process, or RedisBroker for a fleet."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from orchestrator.errors import SettingsError
from orchestrator.settings import mask_url

DEFAULT_NAMESPACE = "fuzzorch"


def make_broker(url: str, *, namespace: str = DEFAULT_NAMESPACE) -> dramatiq.Broker:
    """A broker for ``memory://`` or ``redis://…``; Redis keys all start with ``namespace``.

    The namespace keeps several fuzzorch installations (or test runs) apart on one shared
    Redis server without claiming whole database numbers.
    """
    if url == "memory://":
        return StubBroker()
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    raise SettingsError(f"unsupported broker URL {mask_url(url)!r}")
