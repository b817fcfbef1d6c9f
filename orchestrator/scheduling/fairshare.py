"""Sharing free worker slots between running campaigns, by priority, without starvation.

The rule, for ``S`` = the slots the campaigns hold now plus the free ones:

1. **Quotas.** Each campaign that runs or wants to run is entitled to ``S * p / sum(p)``
   slots, by water-filling: a campaign that can use fewer (its workers, or the jobs its
   remaining budget can still fill) is capped, and the rest is shared again by priority.
2. **Whole slots first.** A campaign below ``floor(quota)`` gets free slots first, the one
   furthest below its quota (held / quota) before the others.
3. **The fractions by service.** Slots cannot be split, so the remaining ones (the
   fractional parts of the quotas add up to whole slots) go, one per campaign up to
   ``ceil(quota)``, to the campaign that has received the least CPU per unit of priority
   (``served_cpu_s / priority``). That number only grows while a campaign runs, so a
   waiting campaign's turn always comes: with priorities 2:1 on four slots the quotas are
   2.67 and 1.33, the fourth slot alternates, and over an hour the CPU splits 2:1.

Ties break on higher priority, then the campaign id, so the answer is deterministic.

Why not plain weighted fair queuing on ``served_cpu_s``: a stateless function cannot keep
WFQ's virtual clock, and without it a campaign started late (little service) would take
every slot until it caught up with campaigns that have run for hours. Here service decides
only the fractional slots, so a late campaign gets its quota at once and no more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from orchestrator.scheduling.model import CampaignDemand, check_int, check_number

_EPS = 1e-9


def _demand(c: CampaignDemand, min_slice_s: float) -> int:
    """How many more jobs a campaign could start now."""
    if c.remaining_cpu_s <= 0.0:
        return 0
    # No job is shorter than min_slice_s unless it takes the whole remainder, so this many
    # jobs are enough to spend what is left.
    return max(0, min(c.max_running - c.running, math.ceil(c.remaining_cpu_s / min_slice_s)))


def _quotas(caps: list[int], priorities: list[float], total: int) -> list[float]:
    """Water-filling: shares of ``total`` by priority, none above its cap."""
    quotas = [0.0] * len(caps)
    pool = [i for i, cap in enumerate(caps) if cap > 0]
    left = float(total)
    while pool and left > _EPS:
        weight = math.fsum(priorities[i] for i in pool)
        capped = [i for i in pool if caps[i] <= left * priorities[i] / weight + _EPS]
        if not capped:
            for i in pool:
                quotas[i] = left * priorities[i] / weight
            break
        for i in capped:
            quotas[i] = float(caps[i])
            left -= caps[i]
        done = set(capped)
        pool = [i for i in pool if i not in done]
    return quotas


def share_slots(
    campaigns: Sequence[CampaignDemand],
    free_slots: int,
    *,
    min_slice_s: float = 10.0,
) -> dict[str, int]:
    """How many of ``free_slots`` each campaign gets now (every campaign id, 0 included).

    ``min_slice_s`` is the planner's shortest job (``PlanParams.min_slice_s``): a campaign
    is never given more slots than its remaining budget can fill with such jobs.
    """
    check_int("free_slots", free_slots)
    check_number("min_slice_s", min_slice_s, strict=True)
    cs = list(campaigns)
    ids: set[str] = set()
    for c in cs:
        if not isinstance(c, CampaignDemand):
            raise ValueError(f"campaigns must hold CampaignDemand values, got {c!r}")
        if c.campaign_id in ids:
            raise ValueError(f"campaigns has campaign {c.campaign_id!r} twice")
        ids.add(c.campaign_id)

    demand = [_demand(c, min_slice_s) for c in cs]
    held = [c.running for c in cs]
    priority = [float(c.priority) for c in cs]
    caps = [h + d for h, d in zip(held, demand, strict=True)]
    quotas = _quotas(caps, priority, free_slots + sum(held))
    whole = [math.floor(q + _EPS) for q in quotas]
    ceiling = [math.ceil(q - _EPS) for q in quotas]
    given = [0] * len(cs)

    def by_quota(i: int) -> tuple[float, float, str]:
        return ((held[i] + given[i]) / quotas[i], -priority[i], cs[i].campaign_id)

    def by_service(i: int) -> tuple[float, float, str]:
        return (cs[i].served_cpu_s / priority[i], -priority[i], cs[i].campaign_id)

    for _ in range(free_slots):
        open_ = [i for i in range(len(cs)) if given[i] < demand[i]]
        if not open_:
            break
        below = [i for i in open_ if held[i] + given[i] < whole[i]]
        if below:
            pick = min(below, key=by_quota)
        else:
            # At most one fractional slot each (ceiling = whole + 1). Once the quotas are
            # met, every open campaign is at its ceiling and the quotas added up to the
            # slots, so ``open_`` is only a guard against rounding.
            fraction = [i for i in open_ if held[i] + given[i] < ceiling[i]]
            pick = min(fraction or open_, key=by_service)
        given[pick] += 1
    return {c.campaign_id: g for c, g in zip(cs, given, strict=True)}
