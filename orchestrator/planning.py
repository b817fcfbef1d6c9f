"""From stored jobs to the scheduler's plain values, and back to jobs to start."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from orchestrator.scheduler import (
    CampaignDemand,
    CampaignState,
    HarnessHistory,
    PlanParams,
    RunningJob,
    SliceResult,
    next_jobs,
    share_slots,
)
from orchestrator.store.campaigns import CampaignRecord
from orchestrator.store.leases import UNFINISHED, JobRecord, JobState


def plan_campaign_jobs(
    campaign: CampaignRecord,
    jobs: Sequence[JobRecord],
    *,
    harnesses: Sequence[str],
    elapsed_s: float,
    free_slots: int,
    slice_seconds: float,
) -> list[tuple[str, float]]:
    """The (harness, seconds) jobs to start now, given the campaign's jobs so far."""
    if free_slots <= 0 or not harnesses:
        return []
    slices: dict[str, list[SliceResult]] = defaultdict(list)
    best: dict[str, int] = defaultdict(int)
    running: list[RunningJob] = []
    used = 0.0
    for job in jobs:
        name = job.harness or ""
        if name not in harnesses:
            continue
        planned = float(job.spec.get("duration_s") or 0.0)
        if job.state in UNFINISHED:
            running.append(RunningJob(name, planned))
            continue
        if job.outcome_data is None:  # dead-lettered or cancelled: its time is spent
            used += planned if job.state is JobState.DEAD else 0.0
            continue
        stats = job.outcome_data.get("stats") or {}
        wall = float(stats.get("wall_s", 0.0))
        coverage = int(stats.get("coverage", 0))
        crashes = job.outcome_data.get("crashes") or []
        slices[name].append(
            SliceResult(
                cpu_seconds=wall,
                new_coverage=max(0, coverage - best[name]),
                crashed=bool(crashes),
                crash_signature=crashes[0].get("signature") if crashes else None,
                outcome=str(job.outcome_data.get("code", "ok")),
            )
        )
        best[name] = max(best[name], coverage)
        used += wall
    state = CampaignState(
        duration_s=campaign.duration_s,
        workers=campaign.workers,
        histories=tuple(HarnessHistory(n, tuple(slices[n])) for n in sorted(harnesses)),
        cpu_used_s=used,
        running=tuple(running),
    )
    params = PlanParams(slice_seconds=slice_seconds, min_slice_s=min(10.0, slice_seconds / 2))
    chosen = next_jobs(state, free_slots=free_slots, now_elapsed_s=elapsed_s, params=params)
    return [(job.harness, job.seconds) for job in chosen]


def committed_seconds(jobs: Sequence[JobRecord]) -> float:
    """CPU-seconds a campaign has used (finished jobs) or committed (unfinished ones)."""
    total = 0.0
    for job in jobs:
        planned = float(job.spec.get("duration_s") or 0.0)
        if job.state in UNFINISHED or job.state is JobState.DEAD:
            total += planned
        elif job.outcome_data is not None:
            total += float((job.outcome_data.get("stats") or {}).get("wall_s", 0.0))
    return total


def slot_shares(
    campaigns: Sequence[CampaignRecord],
    jobs: dict[str, list[JobRecord]],
    *,
    fleet_slots: int,
    slice_seconds: float,
) -> dict[str, int]:
    """New jobs each running campaign may start now.

    Without a fleet size (0), every campaign keeps its own ``workers`` jobs in flight.
    With one, the free slots of the fleet are shared by priority (a campaign of priority p
    weighs p + 1), never beyond a campaign's own ``workers``.
    """
    live = {c.id: sum(1 for j in jobs[c.id] if j.state in UNFINISHED) for c in campaigns}
    if fleet_slots <= 0:
        return {c.id: max(0, c.workers - live[c.id]) for c in campaigns}
    demands = []
    for campaign in campaigns:
        served = committed_seconds(jobs[campaign.id])
        demands.append(
            CampaignDemand(
                campaign_id=campaign.id,
                priority=float(campaign.priority + 1),
                remaining_cpu_s=max(0.0, campaign.budget_cpu_s - served),
                served_cpu_s=served,
                running=live[campaign.id],
                max_running=campaign.workers,
            )
        )
    free = max(0, fleet_slots - sum(live.values()))
    return share_slots(demands, free, min_slice_s=min(10.0, slice_seconds / 2))
