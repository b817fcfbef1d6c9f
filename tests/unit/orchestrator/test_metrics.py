"""The metrics text (Prometheus exposition format 0.0.4) and queue depths on the stub broker."""

from __future__ import annotations

import logging
import re
import socket

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from orchestrator.metrics import CONTENT_TYPE, queue_depth, render
from orchestrator.store.metrics import MetricsSnapshot

FAMILIES = [
    ("fuzzorch_executions_total", "counter"),
    ("fuzzorch_jobs", "gauge"),
    ("fuzzorch_queue_depth", "gauge"),
    ("fuzzorch_crash_groups", "gauge"),
    ("fuzzorch_crash_groups_by_kind", "gauge"),
    ("fuzzorch_campaigns", "gauge"),
    ("fuzzorch_repositories", "gauge"),
]
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (-?[0-9]+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Parsed = dict[str, tuple[str, str, dict[tuple[tuple[str, str], ...], int]]]


def parse(text: str) -> Parsed:
    """A strict reader of the format: families in order, each with its HELP, TYPE, samples."""
    assert text.endswith("\n")
    families: Parsed = {}
    current = ""
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            current, help_text = line[len("# HELP ") :].split(" ", 1)
            assert current not in families, f"{current} twice"
            families[current] = (help_text, "", {})
        elif line.startswith("# TYPE "):
            name, kind = line[len("# TYPE ") :].split(" ")
            assert name == current
            families[name] = (families[name][0], kind, {})
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            assert name == current, f"{name} outside its family"
            key = _labels(labels or "")
            assert key not in families[name][2], f"duplicate series {line!r}"
            families[name][2][key] = int(value)
    return families


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    position = 0
    while position < len(text):
        match = LABEL.match(text, position)
        assert match, f"bad labels at {text[position:]!r}"
        value = re.sub(r"\\[\\\"n]", lambda m: UNESCAPE[m.group(0)], match.group(2))
        pairs.append((match.group(1), value))
        position = match.end()
    return tuple(pairs)


def _full() -> MetricsSnapshot:
    return MetricsSnapshot(
        executions={"web": 1500, "api": 7},
        jobs={("fuzz", "running"): 2, ("fuzz", "done"): 9, ("triage", "pending"): 1},
        crash_groups={("web", "open"): 3, ("web", "fixed"): 1, ("api", "open"): 0},
        crash_groups_by_kind={"exception": 3, "timeout": 1},
        campaigns={"running": 1, "done": 4},
        repositories=2,
    )


def test_an_empty_snapshot_has_every_family_with_help_and_type() -> None:
    text = render(MetricsSnapshot(), {})
    families = parse(text)
    assert [(name, kind) for name, (_help, kind, _s) in families.items()] == FAMILIES
    assert all(help_text for help_text, _kind, _samples in families.values())
    assert {name: samples for name, (_h, _k, samples) in families.items() if samples} == {
        "fuzzorch_repositories": {(): 0}
    }


def test_the_samples_carry_their_labels_and_values() -> None:
    families = parse(render(_full(), {"fuzz": 4, "triage": 0}))
    samples = {name: s for name, (_h, _k, s) in families.items()}
    assert samples["fuzzorch_executions_total"] == {
        (("repo", "api"),): 7,
        (("repo", "web"),): 1500,
    }
    assert samples["fuzzorch_jobs"][(("queue", "fuzz"), ("state", "running"))] == 2
    assert samples["fuzzorch_queue_depth"] == {(("queue", "fuzz"),): 4, (("queue", "triage"),): 0}
    assert samples["fuzzorch_crash_groups"][(("repo", "api"), ("status", "open"))] == 0
    assert samples["fuzzorch_crash_groups_by_kind"][(("kind", "timeout"),)] == 1
    assert samples["fuzzorch_campaigns"] == {(("status", "done"),): 4, (("status", "running"),): 1}
    assert samples["fuzzorch_repositories"] == {(): 2}


def test_the_text_is_exactly_the_format() -> None:
    snapshot = MetricsSnapshot(executions={"web": 12}, repositories=1)
    text = render(snapshot, {"fuzz": 3})
    assert text.splitlines()[:6] == [
        "# HELP fuzzorch_executions_total Harness executions reported by finished fuzz job"
        " attempts.",
        "# TYPE fuzzorch_executions_total counter",
        'fuzzorch_executions_total{repo="web"} 12',
        "# HELP fuzzorch_jobs Jobs by queue and state.",
        "# TYPE fuzzorch_jobs gauge",
        "# HELP fuzzorch_queue_depth Broker messages waiting for a worker.",
    ]
    assert 'fuzzorch_queue_depth{queue="fuzz"} 3\n' in text
    assert text.endswith("# TYPE fuzzorch_repositories gauge\nfuzzorch_repositories 1\n")
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_hostile_label_values_are_escaped_and_read_back() -> None:
    hostile = 'a"b\nc\\'
    snapshot = MetricsSnapshot(crash_groups_by_kind={hostile: 1, '} 9\nfuzzorch_x{a="': 2})
    text = render(snapshot, {})
    assert 'fuzzorch_crash_groups_by_kind{kind="a\\"b\\nc\\\\"} 1\n' in text
    samples = parse(text)["fuzzorch_crash_groups_by_kind"][2]
    assert samples == {(("kind", hostile),): 1, (("kind", '} 9\nfuzzorch_x{a="'),): 2}


def test_control_characters_are_dropped_and_colliding_values_merged() -> None:
    snapshot = MetricsSnapshot(
        crash_groups_by_kind={"x\x00y\x1b[1m\x7f\x85\r\t": 1, "xy[1m": 2, "\ud800z": 4}
    )
    samples = parse(render(snapshot, {}))["fuzzorch_crash_groups_by_kind"][2]
    assert samples == {(("kind", "xy[1m"),): 3, (("kind", "z"),): 4}


def test_the_output_does_not_depend_on_insertion_order() -> None:
    full = _full()
    reversed_ = MetricsSnapshot(
        executions=dict(reversed(list(full.executions.items()))),
        jobs=dict(reversed(list(full.jobs.items()))),
        crash_groups=dict(reversed(list(full.crash_groups.items()))),
        crash_groups_by_kind=dict(reversed(list(full.crash_groups_by_kind.items()))),
        campaigns=dict(reversed(list(full.campaigns.items()))),
        repositories=full.repositories,
    )
    text = render(full, {"fuzz": 1, "ingest": 0})
    assert text == render(reversed_, {"ingest": 0, "fuzz": 1})
    jobs = [line for line in text.splitlines() if line.startswith("fuzzorch_jobs{")]
    assert jobs == sorted(jobs)


def _message(queue: str) -> dramatiq.Message[None]:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options={})


def test_queue_depth_counts_the_stub_brokers_waiting_messages() -> None:
    broker = StubBroker()
    try:
        broker.declare_queue("fuzz")
        broker.declare_queue("ingest")
        for _ in range(3):
            broker.enqueue(_message("fuzz"))
        assert queue_depth(broker) == {"fuzz": 3, "ingest": 0}
        broker.enqueue(_message("fuzz"), delay=60_000)  # a delayed message waits too
        assert queue_depth(broker, ["fuzz", "triage"]) == {"fuzz": 4, "triage": 0}
    finally:
        broker.close()


def test_queue_depth_of_an_unknown_broker_is_empty() -> None:
    broker = dramatiq.Broker()
    assert queue_depth(broker, ["fuzz"]) == {}


def test_queue_depth_of_an_unreachable_redis_is_empty_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A bound socket that never listens: connecting to it is refused at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        broker = RedisBroker(url=f"redis://127.0.0.1:{port}/0", namespace="fuzzorch")  # type: ignore[no-untyped-call]
        broker.declare_queue("fuzz")
        with caplog.at_level(logging.WARNING, logger="orchestrator.metrics"):
            assert queue_depth(broker) == {}
        broker.client.close()
        broker.client.connection_pool.disconnect()
    assert "queue depths unavailable: ConnectionError" in caplog.text
