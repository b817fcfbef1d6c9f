"""The queue contract, worker side: the ``fuzz`` actor and the messages it sends to ``ingest``.

A worker never writes SQL. It announces ``started`` when it picks a job up, a
``heartbeat`` (with the statistics samples since the last one) every few seconds, each
``crash`` as soon as its testcase is stored, and the ``outcome`` at the end; the trusted
side records them. Actors are declared on an explicit broker (no global broker), so the
same code runs on the in-process stub and on Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from harnesses.libfuzzer import StatsLine
from workers.contract import CrashReport, JobSpec, Outcome, OutcomeCode
from workers.fuzzjob import JobEvents, WorkerCaches, run_job
from workers.triage_contract import TriageCode, TriageOutcome, TriageSpec
from workers.triagejob import run_triage

logger = logging.getLogger(__name__)

FUZZ_QUEUE = "fuzz"
TRIAGE_QUEUE = "triage"
INGEST_QUEUE = "ingest"
FUZZ_ACTOR = "fuzz_job"
TRIAGE_ACTOR = "triage_job"
INGEST_ACTOR = "ingest"
# Our own leases re-dispatch lost jobs; dramatiq's retries and time limit would only fight
# them (a retry is an attempt the trusted side never dispatched).
FUZZ_OPTIONS: dict[str, Any] = {"max_retries": 0, "time_limit": 24 * 3600 * 1000}
MAX_SAMPLES_PER_HEARTBEAT = 200


def send_ingest(broker: dramatiq.Broker, kind: str, body: dict[str, Any]) -> None:
    """Put one message on the ``ingest`` queue."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=INGEST_QUEUE,
            actor_name=INGEST_ACTOR,
            args=({"type": kind, **body},),
            kwargs={},
            options={},
        )
    )


def send_fuzz(broker: dramatiq.Broker, spec: JobSpec) -> None:
    """Put one fuzz job (one attempt) on the ``fuzz`` queue."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=FUZZ_QUEUE,
            actor_name=FUZZ_ACTOR,
            args=(spec.to_json(),),
            kwargs={},
            options={},
        )
    )


def send_triage(broker: dramatiq.Broker, spec: TriageSpec) -> None:
    """Put one triage job (one attempt) on the ``triage`` queue."""
    broker.enqueue(
        dramatiq.Message(
            queue_name=TRIAGE_QUEUE,
            actor_name=TRIAGE_ACTOR,
            args=(spec.to_json(),),
            kwargs={},
            options={},
        )
    )


@dataclass
class _Samples:
    """Statistics samples collected between heartbeats (bounded)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def add(self, elapsed: float, line: StatsLine) -> None:
        with self.lock:
            if len(self.pending) >= MAX_SAMPLES_PER_HEARTBEAT:
                self.pending.pop(0)
            self.pending.append(
                {
                    "elapsed_s": round(elapsed, 3),
                    "execs": line.execs or 0,
                    "coverage": line.coverage or 0,
                    "features": line.features or 0,
                    "corpus_units": line.corpus_units or 0,
                }
            )

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            taken, self.pending = self.pending, []
            return taken


def declare_fuzz_actor(
    broker: dramatiq.Broker,
    caches: Callable[[], WorkerCaches],
    *,
    worker_name: str,
    heartbeat_seconds: float,
    run: Callable[..., Outcome] = run_job,
) -> dramatiq.Actor[[dict[str, Any]], None]:
    """Declare the ``fuzz`` actor on ``broker``: it runs one job attempt per message.

    ``caches`` is called in the thread that runs the job: each worker thread has its own
    sandbox (and harness uid), so one job's fork bomb cannot starve its neighbours.
    """

    def fuzz_job(document: dict[str, Any]) -> None:
        spec = JobSpec.from_json(document)
        ids = {"job_id": spec.job_id, "attempt": spec.attempt, "worker": worker_name}
        send_ingest(broker, "started", ids)
        samples = _Samples()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat_seconds):
                send_ingest(broker, "heartbeat", {**ids, "samples": samples.take()})

        def on_crash(report: CrashReport) -> None:
            send_ingest(broker, "crash", {**ids, "crash": report.to_json()})

        heart = threading.Thread(target=beat, name=f"heartbeat-{spec.job_id}", daemon=True)
        heart.start()
        try:
            events = JobEvents(on_crash=on_crash, on_stats=samples.add)
            outcome = run(spec, caches(), events=events)
        except Exception as exc:  # a bug of ours: report it as data, not a lost message
            logger.exception("job %s attempt %d failed", spec.job_id, spec.attempt)
            outcome = Outcome(spec.job_id, spec.attempt, OutcomeCode.INFRA_ERROR, detail=repr(exc))
        finally:
            done.set()
            heart.join()
        send_ingest(broker, "heartbeat", {**ids, "samples": samples.take()})
        send_ingest(broker, "outcome", {**ids, "outcome": outcome.to_json()})

    return dramatiq.Actor(
        fuzz_job,
        broker=broker,
        actor_name=FUZZ_ACTOR,
        queue_name=FUZZ_QUEUE,
        priority=0,
        options=dict(FUZZ_OPTIONS),
    )


def declare_triage_actor(
    broker: dramatiq.Broker,
    caches: Callable[[], WorkerCaches],
    *,
    worker_name: str,
    heartbeat_seconds: float,
    run: Callable[..., TriageOutcome] = run_triage,
) -> dramatiq.Actor[[dict[str, Any]], None]:
    """Declare the ``triage`` actor on ``broker``: it runs one triage job attempt per message.

    It announces ``started``, beats while it works (a bisection can take minutes) and
    sends the result as a ``triage`` message.
    """

    def triage_job(document: dict[str, Any]) -> None:
        spec = TriageSpec.from_json(document)
        ids = {"job_id": spec.job_id, "attempt": spec.attempt, "worker": worker_name}
        send_ingest(broker, "started", ids)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat_seconds):
                send_ingest(broker, "heartbeat", {**ids, "samples": []})

        heart = threading.Thread(target=beat, name=f"heartbeat-{spec.job_id}", daemon=True)
        heart.start()
        try:
            outcome = run(spec, caches())
        except Exception as exc:  # a bug of ours: report it as data, not a lost message
            logger.exception("triage job %s attempt %d failed", spec.job_id, spec.attempt)
            outcome = TriageOutcome(
                spec.job_id, spec.attempt, spec.group_id, spec.task, TriageCode.INFRA_ERROR,
                spec.commit, detail=repr(exc)[:2000],
            )  # fmt: skip
        finally:
            done.set()
            heart.join()
        send_ingest(broker, "triage", {**ids, "outcome": outcome.to_json()})

    return dramatiq.Actor(
        triage_job,
        broker=broker,
        actor_name=TRIAGE_ACTOR,
        queue_name=TRIAGE_QUEUE,
        priority=0,
        options=dict(FUZZ_OPTIONS),
    )
