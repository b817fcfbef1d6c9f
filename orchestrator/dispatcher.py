"""The dispatcher: plans fuzz jobs for running campaigns, leases them, and reclaims lost ones.

Plan -> lease -> send: a job is planned (scheduler), written as ``pending``, leased as
attempt k in one guarded UPDATE, and only then sent to the ``fuzz`` queue; if the send is
lost the lease expires and the reconciler sends attempt k+1. The SQL store, not the broker,
knows what is running.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dramatiq

from harnesses.model import Harness
from orchestrator.identity import new_id
from orchestrator.planning import plan_campaign_jobs, slot_shares
from orchestrator.registry import Registry
from orchestrator.settings import Timings
from orchestrator.store import leases
from orchestrator.store.campaigns import (
    CampaignRecord,
    CampaignStatus,
    get_campaign,
    list_campaigns,
    transition,
)
from orchestrator.store.database import Database
from orchestrator.store.repos import get_repo
from orchestrator.triage import Triage
from workers.contract import JobSpec
from workers.queue import FUZZ_QUEUE, TRIAGE_QUEUE, send_fuzz, send_triage
from workers.triage_contract import TriageSpec

logger = logging.getLogger(__name__)

# Grace on top of a job's own duration before its lease may be reclaimed even with
# heartbeats (a worker that keeps beating but never ends).
FINISH_GRACE_S = 120.0


@dataclass
class _CampaignContext:
    """What a campaign's jobs need, read once per campaign and process."""

    source: str
    harnesses: dict[str, Harness]
    install: tuple[str, ...] | None


@dataclass
class Dispatcher:
    """One pass (``tick``) plans, leases and reclaims; call it every reconcile period."""

    database: Database
    broker: dramatiq.Broker
    registry: Registry
    timings: Timings
    clock: Callable[[], float]
    on_finished: Callable[[CampaignRecord], None] = lambda _campaign: None
    fleet_slots: int = 0  # 0: each campaign keeps its own workers busy; else shared by priority
    triage_runs: int = 10  # reproductions per crash group (reliability)
    _contexts: dict[str, _CampaignContext] = field(default_factory=dict)
    _triage: Triage | None = None

    @property
    def triage(self) -> Triage:
        """The triage planner sharing this dispatcher's adapters."""
        if self._triage is None:
            self._triage = Triage(
                self.database, self.broker, self.registry, self.timings, self.clock,
                runs=self.triage_runs,
            )  # fmt: skip
        return self._triage

    def tick(self) -> None:
        """Advance every running campaign, close triaged ones, reclaim lost job attempts."""
        self.reconcile()
        with self.database.transaction() as conn:
            running = list_campaigns(conn, statuses=(CampaignStatus.RUNNING,))
            triaging = list_campaigns(conn, statuses=(CampaignStatus.TRIAGING,))
            jobs = {
                c.id: [j for j in leases.campaign_jobs(conn, c.id) if j.queue == FUZZ_QUEUE]
                for c in running
            }
        shares = slot_shares(
            running, jobs, fleet_slots=self.fleet_slots, slice_seconds=self.timings.slice_seconds
        )
        for campaign in running:
            # Re-checks are planned when a campaign starts; if that failed, until it works.
            self.triage.plan(campaign, "checks")
            self._advance(campaign, jobs[campaign.id], shares.get(campaign.id, 0))
        for campaign in triaging:
            self._close_if_triaged(campaign)

    def start(self, campaign_id: str) -> bool:
        """Move a queued campaign to running and send its fix re-checks; False if it was
        not queued."""
        with self.database.transaction() as conn:
            moved = transition(
                conn, campaign_id, from_=(CampaignStatus.QUEUED,), to=CampaignStatus.RUNNING,
                now=self.clock(),
            )  # fmt: skip
            campaign = get_campaign(conn, campaign_id)
        if moved:
            self.triage.plan(campaign, "checks")
        return moved

    def cancel(self, campaign_id: str) -> bool:
        """Cancel a campaign and its unfinished jobs; False if it had finished already."""
        now = self.clock()
        with self.database.transaction() as conn:
            moved = transition(
                conn,
                campaign_id,
                from_=(CampaignStatus.QUEUED, CampaignStatus.RUNNING, CampaignStatus.TRIAGING),
                to=CampaignStatus.CANCELLED,
                now=now,
            )
            leases.cancel_jobs(conn, campaign_id, now=now)
        return moved

    def _context(self, campaign: CampaignRecord) -> _CampaignContext:
        context = self._contexts.get(campaign.id)
        if context is None:
            with self.database.transaction() as conn:
                source = get_repo(conn, campaign.repo).source
            collection = self.registry.collection(campaign.repo, campaign.commit)
            context = _CampaignContext(
                source=source,
                harnesses={h.name: h for h in collection.harnesses},
                install=self.registry.install_commands(campaign.repo, campaign.commit),
            )
            self._contexts[campaign.id] = context
        return context

    def _advance(
        self, campaign: CampaignRecord, jobs: list[leases.JobRecord], free_slots: int
    ) -> None:
        now = self.clock()
        elapsed = now - (campaign.started_at or now)
        live = [j for j in jobs if j.state in leases.UNFINISHED]
        context = self._context(campaign)
        planned = plan_campaign_jobs(
            campaign,
            jobs,
            harnesses=sorted(context.harnesses),
            elapsed_s=elapsed,
            free_slots=free_slots,
            slice_seconds=self.timings.slice_seconds,
        )
        if not planned and not live:
            self._finish(campaign)
            return
        for harness, seconds in planned:
            self._submit(campaign, context, harness, seconds)

    def _submit(
        self, campaign: CampaignRecord, context: _CampaignContext, name: str, seconds: float
    ) -> None:
        harness = context.harnesses[name]
        spec = JobSpec(
            job_id=new_id("job"),
            repo=campaign.repo,
            source=context.source,
            commit=campaign.commit,
            harness=harness.name,
            kind=harness.kind,
            path=harness.path,
            options=harness.options,
            install=context.install,
            duration_s=round(seconds, 1),
            campaign_id=campaign.id,
        )
        job = leases.NewJob(
            id=spec.job_id, queue=FUZZ_QUEUE, spec=spec.to_json(),
            max_attempts=self.timings.max_attempts, campaign_id=campaign.id,
            harness=harness.name,
        )  # fmt: skip
        with self.database.transaction() as conn:
            lease = leases.create_and_dispatch(
                conn, job, now=self.clock(), lease_seconds=self.timings.first_lease_seconds
            )
        if lease is not None:
            send_fuzz(self.broker, dataclasses.replace(spec, attempt=lease.attempt))
            logger.info("dispatched %s (%s, %.0f s)", spec.job_id, harness.name, seconds)

    def reconcile(self) -> None:
        """Re-dispatch attempts whose lease ran out; dead-letter jobs out of attempts."""
        now = self.clock()
        with self.database.transaction() as conn:
            expired = leases.expired_leases(conn, now=now)
        for lost in expired:
            with self.database.transaction() as conn:
                job = leases.get_job(conn, lost.job_id)
                result = leases.reclaim(
                    conn, lost.job_id, expected_attempt=lost.attempt, now=now,
                    lease_seconds=self.timings.lease_seconds,
                )  # fmt: skip
            if result.dead:
                logger.warning(
                    "job %s dead-lettered after %d attempts", lost.job_id, job.max_attempts
                )
            elif result.lease is not None and job.queue == TRIAGE_QUEUE:
                triage = TriageSpec.from_json(job.spec)
                send_triage(self.broker, dataclasses.replace(triage, attempt=result.lease.attempt))
            elif result.lease is not None:
                spec = JobSpec.from_json(job.spec)
                send_fuzz(self.broker, dataclasses.replace(spec, attempt=result.lease.attempt))
                logger.warning(
                    "job %s attempt %d lost; sent attempt %d",
                    lost.job_id, lost.attempt, result.lease.attempt,
                )  # fmt: skip

    def _finish(self, campaign: CampaignRecord) -> None:
        """Fuzzing is over: triage what it found (the campaign is done when that is)."""
        with self.database.transaction() as conn:
            moved = transition(
                conn, campaign.id, from_=(CampaignStatus.RUNNING,), to=CampaignStatus.TRIAGING,
                now=self.clock(),
            )  # fmt: skip
        if moved:
            self._contexts.pop(campaign.id, None)
            self._close_if_triaged(campaign)

    def _close_if_triaged(self, campaign: CampaignRecord) -> None:
        if not self.triage.plan(campaign, "analysis") or self.triage.unfinished(campaign.id):
            return
        self.triage.complete(campaign)
        with self.database.transaction() as conn:
            moved = transition(
                conn, campaign.id, from_=(CampaignStatus.TRIAGING,), to=CampaignStatus.DONE,
                now=self.clock(),
            )  # fmt: skip
        if moved:
            with self.database.transaction() as conn:
                self.on_finished(get_campaign(conn, campaign.id))
