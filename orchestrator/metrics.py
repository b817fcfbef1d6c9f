"""The metrics endpoint's body: Prometheus text exposition format 0.0.4.

``render`` is a pure function of a store snapshot and the broker's queue depths;
``queue_depth`` reads the depths from a dramatiq broker and never raises for a broker
outage, since a scrape must not fail because one source of numbers is down.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name

from orchestrator.store.metrics import MetricsSnapshot

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class _Family:
    name: str
    kind: str  # counter | gauge
    help: str
    labels: tuple[str, ...]
    samples: Mapping[tuple[str, ...], int]


def render(snapshot: MetricsSnapshot, queue_depth: Mapping[str, int]) -> str:
    """The exposition text: every family, with its HELP and TYPE even when it has no sample."""
    families = [
        _Family(
            "fuzzorch_executions_total", "counter",
            "Harness executions reported by finished fuzz job attempts.",
            ("repo",), {(repo,): n for repo, n in snapshot.executions.items()},
        ),
        _Family(
            "fuzzorch_jobs", "gauge", "Jobs by queue and state.",
            ("queue", "state"), {(q, s): n for (q, s), n in snapshot.jobs.items()},
        ),
        _Family(
            "fuzzorch_queue_depth", "gauge", "Broker messages waiting for a worker.",
            ("queue",), {(queue,): n for queue, n in queue_depth.items()},
        ),
        _Family(
            "fuzzorch_crash_groups", "gauge", "Crash groups by repository and status.",
            ("repo", "status"), {(r, s): n for (r, s), n in snapshot.crash_groups.items()},
        ),
        _Family(
            "fuzzorch_crash_groups_by_kind", "gauge", "Crash groups by kind of crash.",
            ("kind",), {(kind,): n for kind, n in snapshot.crash_groups_by_kind.items()},
        ),
        _Family(
            "fuzzorch_campaigns", "gauge", "Campaigns by status.",
            ("status",), {(status,): n for status, n in snapshot.campaigns.items()},
        ),
        _Family(
            "fuzzorch_repositories", "gauge", "Registered repositories.",
            (), {(): snapshot.repositories},
        ),
    ]  # fmt: skip
    return "".join(_family(f) for f in families)


def _family(family: _Family) -> str:
    lines = [
        f"# HELP {family.name} {_escape_help(family.help)}",
        f"# TYPE {family.name} {family.kind}",
    ]
    # Two values that differ only in dropped characters would make duplicate series (which
    # Prometheus rejects), so samples are merged after escaping.
    merged: dict[tuple[str, ...], int] = {}
    for values, number in family.samples.items():
        key = tuple(_escape_label(v) for v in values)
        merged[key] = merged.get(key, 0) + number
    for key in sorted(merged):
        pairs = ",".join(
            f'{name}="{value}"' for name, value in zip(family.labels, key, strict=True)
        )
        lines.append(
            f"{family.name}{{{pairs}}} {merged[key]}" if pairs else f"{family.name} {merged[key]}"
        )
    return "\n".join(lines) + "\n"


def _escape_label(value: str) -> str:
    """A label value as the format wants it: \\, " and newline escaped; controls dropped."""
    kept = "".join(
        c for c in str(value) if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs")
    )
    return kept.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def queue_depth(broker: dramatiq.Broker, queues: Iterable[str] | None = None) -> dict[str, int]:
    """Messages waiting for a worker on each queue, delayed ones included.

    ``queues`` defaults to the queues declared on ``broker``. A broker that is neither the
    stub nor Redis gives {}; so does a failing one, with a warning, since a scrape must not
    fail because the broker is down.
    """
    names = sorted(
        {q_name(q) for q in (broker.get_declared_queues() if queues is None else queues)}
    )
    try:
        if isinstance(broker, StubBroker):
            return {name: _stub_depth(broker, name) for name in names}
        if isinstance(broker, RedisBroker):
            return _redis_depth(broker, names)
    except (redis.RedisError, OSError) as exc:
        logger.warning("queue depths unavailable: %s: %s", type(exc).__name__, exc)
        return {}
    return {}


def _stub_depth(broker: StubBroker, name: str) -> int:
    # The stub keeps a queue.Queue per queue and per delay queue; a message a consumer
    # has taken is no longer in it.
    return sum(broker.queues[q].qsize() for q in (name, dq_name(name)) if q in broker.queues)


def _redis_depth(broker: RedisBroker, names: list[str]) -> dict[str, int]:
    """Depths from the keys dramatiq's dispatch.lua keeps (``{namespace}:{queue}…``).

    ``{ns}:{q}`` is the list of message ids no worker has fetched yet; ``{ns}:{q}.msgs`` also
    holds the messages in flight, so it is not the backlog. A delayed message is fetched
    at once by a worker that holds it until its eta, so the delay queue's backlog is its
    hash ``{ns}:{q}.DQ.msgs`` (acknowledged, and so removed, once moved to ``{ns}:{q}``).
    """
    pipe = broker.client.pipeline(transaction=False)
    for name in names:
        pipe.llen(f"{broker.namespace}:{name}")
        pipe.hlen(f"{broker.namespace}:{dq_name(name)}.msgs")
    counts = pipe.execute()
    return {name: int(counts[2 * i]) + int(counts[2 * i + 1]) for i, name in enumerate(names)}
