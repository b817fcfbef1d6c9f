"""Cutting a campaign's budget into fuzz jobs: how long, how many, and for which harness.

**Length.** A job started with ``R`` seconds of wall time left runs ``R / ceil(R / slice)``
seconds: the remaining wall time divided into whole slices of at most ``slice_seconds``. A
worker that chains such jobs ends exactly at the deadline, and the shortening is spread over
the last slices (never below half a slice) instead of leaving one useless stub at the end.
Below ``min_tail_s`` of wall time nothing is started: a job's start-up would eat it.

**Budget.** The campaign may use ``duration x workers`` CPU-seconds. Finished jobs count
what they used, running ones what they were planned for; a new job gets at most what is
left, and a leftover shorter than ``min_slice_s`` is folded into the last job when the wall
time allows, so the final job is never a sliver.

**Which harness.** Deterministic stride scheduling: a harness's *pass* is the CPU it has
received (its fuzzing slices and running jobs, each plus ``job_overhead_s`` for start-up, and
``failure_charge_s`` per failed start) divided by its weight; each job goes to the lowest
pass, which then advances by ``(seconds + job_overhead_s) / weight``. The overhead is why a
harness whose jobs crash within seconds does not get a job every time a slot frees up.
Over time every harness gets CPU in proportion to its weight, with an error of at most one
job, and no randomness to seed: the same state gives the same plan.
Harnesses never run have pass 0, so each is tried once before any gets a second slice; ties
go to the higher weight, then the name. A harness backing off after failed starts runs at
most one job at a time. Building the heap is O(harnesses); each job costs O(log harnesses).

Stride keeps accounts, which is the point (no harness waits on a lucky draw), with one
consequence: a harness that got ahead of its current weight (it was hot, now it is not)
waits until the others catch up. The debt is bounded by the histories passed in, which is
why they hold this campaign's slices only.
"""

from __future__ import annotations

import heapq
import math

from orchestrator.scheduling.model import (
    CampaignState,
    Plan,
    PlannedJob,
    PlanParams,
    WeightCode,
    check_int,
    check_number,
)
from orchestrator.scheduling.weights import Evaluation, WeightTable, evaluate


def slice_length(wall_left_s: float, params: PlanParams) -> float:
    """The length of a job started now, so that whole slices end the campaign on time."""
    if wall_left_s < params.min_tail_s:
        return 0.0
    # The epsilon keeps 240.0000001 s from becoming three 80 s slices instead of two.
    slices = max(1, math.ceil(wall_left_s / params.slice_seconds - 1e-9))
    return wall_left_s / slices


def job_lengths(
    state: CampaignState, *, free_slots: int, now_elapsed_s: float, params: PlanParams
) -> list[float]:
    """The lengths of the jobs to start now, within the wall time and the CPU budget."""
    slots = min(free_slots, state.workers - len(state.running))
    wall_left = state.duration_s - now_elapsed_s
    length = slice_length(wall_left, params)
    budget_left = state.budget_s - state.committed_s
    lengths: list[float] = []
    for _ in range(slots):
        seconds = min(length, budget_left)
        leftover = budget_left - seconds
        if 0.0 < leftover < params.min_slice_s and budget_left <= wall_left:
            seconds = budget_left
        if seconds < params.min_tail_s:
            break
        lengths.append(seconds)
        budget_left -= seconds
    return lengths


def _assign(
    evaluation: Evaluation, state: CampaignState, lengths: list[float], params: PlanParams
) -> list[PlannedJob]:
    """Give each job length to the harness with the lowest pass (see the module docstring)."""
    if not lengths:
        return []
    overhead, charge_s = params.job_overhead_s, params.failure_charge_s
    running_s: dict[str, float] = {}
    running_n: dict[str, int] = {}
    for job in state.running:
        running_s[job.harness] = running_s.get(job.harness, 0.0) + job.seconds + overhead
        running_n[job.harness] = running_n.get(job.harness, 0) + 1
    heap: list[tuple[float, float, str, int]] = []
    get = running_s.get
    for index, (h, w) in enumerate(zip(evaluation.histories, evaluation.values, strict=True)):
        if w <= 0.0:
            continue
        d = h.digest
        served = d.fuzz_cpu + overhead * len(d.cpu) + get(h.name, 0.0)
        if d.failed_start_cpu:
            served += math.fsum(max(c, charge_s) for c in d.failed_start_cpu)
        heap.append((served / w, -w, h.name, index))
    heapq.heapify(heap)
    codes = evaluation.codes
    jobs: list[PlannedJob] = []
    for seconds in lengths:
        while heap:
            pass_, neg_w, name, index = heapq.heappop(heap)
            if codes[index] is WeightCode.BACKOFF and running_n.get(name, 0) >= 1:
                continue  # one attempt at a time while it keeps failing to start
            break
        else:
            break  # every harness is excluded or busy backing off
        jobs.append(PlannedJob(name, seconds))
        running_n[name] = running_n.get(name, 0) + 1
        heapq.heappush(heap, (pass_ - (seconds + overhead) / neg_w, neg_w, name, index))
    return jobs


def plan(
    state: CampaignState,
    *,
    free_slots: int,
    now_elapsed_s: float,
    params: PlanParams | None = None,
) -> Plan:
    """The jobs to start now for one campaign, and every harness's weight with its reason."""
    if not isinstance(state, CampaignState):
        raise ValueError(f"state must be a CampaignState, got {state!r}")
    if params is None:
        params = PlanParams()
    elif not isinstance(params, PlanParams):
        raise ValueError(f"params must be PlanParams, got {params!r}")
    check_int("free_slots", free_slots)
    check_number("now_elapsed_s", now_elapsed_s)
    evaluation = evaluate(state.histories, params.weights, checked=True)
    lengths = job_lengths(state, free_slots=free_slots, now_elapsed_s=now_elapsed_s, params=params)
    jobs = _assign(evaluation, state, lengths, params)
    return Plan(jobs=tuple(jobs), weights=WeightTable(evaluation, params.weights))


def next_jobs(
    state: CampaignState,
    *,
    free_slots: int,
    now_elapsed_s: float,
    params: PlanParams | None = None,
) -> list[PlannedJob]:
    """The jobs to start now for one campaign (``plan(...).jobs``)."""
    return list(plan(state, free_slots=free_slots, now_elapsed_s=now_elapsed_s, params=params).jobs)
