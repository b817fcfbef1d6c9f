"""The campaign scheduler: pure functions from plain values to the jobs to start now.

A campaign (repo, branch, commit, budget = duration x workers CPU-seconds, priority) is cut
into fuzz jobs, time slices of about ``slice_seconds`` per harness, shortened near the end so
every worker's last job ends on time (``scheduling/slicing.py``). Which harness gets each
slice follows adaptive weights (``scheduling/weights.py``): a Boltzmann distribution over
each harness's decayed new-coverage-per-CPU-second, with an optimistic prior for harnesses
sampled little, an exploration floor, and damping for crash storms and failed starts (a
harness that keeps failing to start is excluded, and the plan says why). Free worker slots
are shared between running campaigns by priority (``scheduling/fairshare.py``).

Nothing here reads a clock, a database or a random source: the caller passes the elapsed
time and the histories, and the same inputs always give the same plan. Every function
validates its inputs and raises ``ValueError`` naming the bad value.

    state = CampaignState(duration_s=600, workers=4, histories=(HarnessHistory("fuzz/a.py"),))
    jobs = next_jobs(state, free_slots=4, now_elapsed_s=0.0)
"""

from __future__ import annotations

from orchestrator.scheduling.fairshare import share_slots
from orchestrator.scheduling.model import (
    OUTCOMES,
    CampaignDemand,
    CampaignState,
    HarnessHistory,
    Plan,
    PlannedJob,
    PlanParams,
    RunningJob,
    SliceResult,
    Weight,
    WeightCode,
    WeightParams,
)
from orchestrator.scheduling.slicing import next_jobs, plan, slice_length
from orchestrator.scheduling.weights import weights

__all__ = [
    "OUTCOMES",
    "CampaignDemand",
    "CampaignState",
    "HarnessHistory",
    "Plan",
    "PlanParams",
    "PlannedJob",
    "RunningJob",
    "SliceResult",
    "Weight",
    "WeightCode",
    "WeightParams",
    "next_jobs",
    "plan",
    "share_slots",
    "slice_length",
    "weights",
]
