"""Ingest: the trusted side's only door for what workers report, and the only SQL writer
for it. Every message is validated (a worker runs hostile code and could be subverted) and
recorded idempotently, since delivery is at-least-once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import sqlalchemy as sa

from orchestrator.store import crashes, leases
from orchestrator.store.campaigns import get_campaign
from orchestrator.store.database import Database
from orchestrator.store.schema import job_attempts
from orchestrator.triage import record_triage_outcome
from workers.contract import ContractError, CrashReport, Outcome
from workers.queue import INGEST_ACTOR, INGEST_QUEUE, TRIAGE_QUEUE
from workers.triage_contract import TriageOutcome

logger = logging.getLogger(__name__)

MAX_SAMPLES = 1000


class Ingest:
    """Records started, heartbeat, crash and outcome messages in the SQL store."""

    def __init__(
        self, database: Database, *, clock: Callable[[], float], lease_seconds: float
    ) -> None:
        self.database = database
        self.clock = clock
        self.lease_seconds = lease_seconds

    def handle(self, message: Mapping[str, Any]) -> None:
        """Record one message; malformed ones are logged and dropped, never raised."""
        try:
            kind = message["type"]
            job_id = _text(message, "job_id")
            attempt = message["attempt"]
            if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
                raise ContractError(f"attempt must be a positive integer, got {attempt!r}")
            handler = {
                "started": self._started,
                "heartbeat": self._heartbeat,
                "crash": self._crash,
                "outcome": self._outcome,
                "triage": self._triage,
            }.get(kind)
            if handler is None:
                raise ContractError(f"unknown message type {kind!r}")
            handler(job_id, attempt, message)
        except (ContractError, KeyError, TypeError, ValueError) as exc:
            logger.warning("dropping a malformed ingest message: %s", exc)

    def _started(self, job_id: str, attempt: int, message: Mapping[str, Any]) -> None:
        worker = _text(message, "worker")[:255]
        with self.database.transaction() as conn:
            current = leases.mark_started(
                conn, job_id, attempt=attempt, worker=worker, now=self.clock(),
                lease_seconds=self.lease_seconds,
            )  # fmt: skip
        if not current:
            logger.info(
                "job %s attempt %d started late on %s (superseded)", job_id, attempt, worker
            )

    def _heartbeat(self, job_id: str, attempt: int, message: Mapping[str, Any]) -> None:
        worker = _text(message, "worker")[:255]
        samples = [
            leases.StatSample(
                elapsed_s=float(s["elapsed_s"]),
                execs=int(s["execs"]),
                coverage=int(s["coverage"]),
                features=int(s["features"]),
                corpus_units=int(s["corpus_units"]),
            )
            for s in list(message.get("samples") or [])[:MAX_SAMPLES]
        ]
        now = self.clock()
        with self.database.transaction() as conn:
            leases.heartbeat(
                conn, job_id, attempt=attempt, worker=worker, now=now,
                lease_seconds=self.lease_seconds,
            )  # fmt: skip
            leases.record_stats(conn, job_id, attempt=attempt, samples=samples, now=now)

    def _crash(self, job_id: str, attempt: int, message: Mapping[str, Any]) -> None:
        report = CrashReport.from_json(message["crash"])
        _check_testcase_key(report)
        with self.database.transaction() as conn:
            self._record_crash(conn, job_id, attempt, report)

    def _outcome(self, job_id: str, attempt: int, message: Mapping[str, Any]) -> None:
        outcome = Outcome.from_json(message["outcome"])
        if (outcome.job_id, outcome.attempt) != (job_id, attempt):
            raise ContractError(f"outcome of {outcome.job_id!r} sent as {job_id!r}")
        with self.database.transaction() as conn:
            # Crashes again: the announcements may have been lost with a Redis restart.
            for report in outcome.crashes:
                _check_testcase_key(report)
                self._record_crash(conn, job_id, attempt, report)
            first = leases.record_outcome(
                conn, job_id, attempt=attempt, outcome=outcome.code.value,
                data=outcome.to_json(), now=self.clock(),
            )  # fmt: skip
        logger.info(
            "job %s attempt %d: %s%s", job_id, attempt, outcome.code.value,
            "" if first else " (not the job's first outcome: kept for its crashes)",
        )  # fmt: skip

    def _triage(self, job_id: str, attempt: int, message: Mapping[str, Any]) -> None:
        outcome = TriageOutcome.from_json(message["outcome"])
        if (outcome.job_id, outcome.attempt) != (job_id, attempt):
            raise ContractError(f"outcome of {outcome.job_id!r} sent as {job_id!r}")
        now = self.clock()
        with self.database.transaction() as conn:
            job = leases.get_job(conn, job_id)
            if job.queue != TRIAGE_QUEUE:
                raise ContractError(f"job {job_id!r} is not a triage job")
            first = leases.record_outcome(
                conn, job_id, attempt=attempt, outcome=outcome.code.value,
                data=outcome.to_json(), now=now,
            )  # fmt: skip
            if first:
                record_triage_outcome(conn, job, outcome, now=now)
        logger.info(
            "triage job %s attempt %d (%s %s): %s%s", job_id, attempt, outcome.task.value,
            outcome.group_id, outcome.code.value, "" if first else " (not the first outcome)",
        )  # fmt: skip

    def _record_crash(
        self, conn: sa.Connection, job_id: str, attempt: int, report: CrashReport
    ) -> None:
        job = leases.get_job(conn, job_id)
        if job.campaign_id is None:
            return
        campaign = get_campaign(conn, job.campaign_id)
        started = conn.execute(
            sa.select(job_attempts.c.started_at).where(
                job_attempts.c.job_id == job_id, job_attempts.c.attempt == attempt
            )
        ).scalar_one_or_none()
        # found_after_s is measured from the campaign's start, not the job's.
        found = None
        if started is not None and campaign.started_at is not None:
            found = round(max(0.0, started - campaign.started_at) + report.found_after_s, 3)
        group, created = crashes.record_sighting(
            conn,
            report,
            crashes.Sighting(
                repo=campaign.repo,
                campaign_id=campaign.id,
                job_id=job_id,
                attempt=attempt,
                commit=campaign.commit,
                harness=job.harness or "",
                found_after_s=found,
                now=self.clock(),
            ),
        )
        if created:
            logger.info("new crash group %s: %s", group, report.title)


_TESTCASE_KEY = re.compile(r"crashes/[a-z0-9][a-z0-9._-]{0,63}/[0-9a-f]{16}/[0-9a-f]{40}")


def _check_testcase_key(report: CrashReport) -> None:
    """A worker names where it stored a testcase; only a crash-testcase key is accepted
    (the download route and re-checks read it back)."""
    if not _TESTCASE_KEY.fullmatch(report.testcase_key):
        shown = report.testcase_key[:200]
        raise ContractError(f"testcase key {shown!r} is not a crash testcase key")


def _text(message: Mapping[str, Any], key: str) -> str:
    value = message[key]
    if not isinstance(value, str) or not value:
        raise ContractError(f"{key} must be a non-empty string, got {value!r}")
    return value


def declare_ingest_actor(
    broker: dramatiq.Broker, ingest: Ingest
) -> dramatiq.Actor[[dict[str, Any]], None]:
    """Declare the ``ingest`` actor on ``broker``."""

    def record(message: dict[str, Any]) -> None:
        ingest.handle(message)

    return dramatiq.Actor(
        record,
        broker=broker,
        actor_name=INGEST_ACTOR,
        queue_name=INGEST_QUEUE,
        priority=0,
        options={"max_retries": 5},
    )
