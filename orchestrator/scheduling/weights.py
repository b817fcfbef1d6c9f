"""Adaptive harness weights: where the next CPU-second is most likely to find something new.

The rule, for each harness ``i`` of a campaign:

1. **Decayed coverage rate.** ``C_i`` and ``T_i`` are its new coverage and CPU-seconds summed
   over the slices in which it actually fuzzed (``ok``, ``crashed``, ``timed_out``), the
   newest slice counting 1 and one ``k`` slices older ``decay**k``. A ratio of decayed sums,
   not a mean of per-slice ratios, so a 3-second slice that crashed early cannot swing it.
2. **Optimism for the under-sampled.** The estimate is the posterior mean of a Gamma-Poisson
   model whose prior is a pseudo-slice of ``prior_seconds`` CPU at ``optimism`` times the
   pooled rate ``R = (sum C + 1) / (sum T + prior_seconds)``, placed before the harness's
   first slice and decayed like the real ones: with ``n`` fuzzing slices and
   ``P = prior_seconds * decay**n``, ``r_i = (C_i + optimism * R * P) / (T_i + P)``.
   A harness never run is assumed twice as good as the average; one that keeps finding
   stays up, and each empty slice pulls it down geometrically. Decaying the prior matters:
   decayed CPU saturates at ``slice / (1 - decay)``, so an undecayed prior would never be
   outweighed and a harness stuck at zero would keep nearly a third of the optimism for ever. The
   ``+ 1`` keeps the prior positive when nothing has found anything yet, so the bonus still
   steers CPU to the harnesses sampled least.
3. **Boltzmann over a unitless score.** ``p_i ∝ exp((min(1, r_i / b) - 1) / temperature)``
   with ``b = max_j d_j r_j``, the best rate after the damping ``d_j`` of step 5. Dividing
   by the best rate makes the temperature mean the same thing for a parser that finds 50
   edges a second and a protocol that finds one a minute, and caps the ratio of two
   harnesses' shares at ``exp(1 / temperature)`` (55x at 0.25): sharp, never all-or-nothing.
   Taking the best after damping keeps a crash storm's inflated rate (a few edges in a
   2-second slice) from squashing every other harness's score towards zero.
4. **Exploration floor.** ``floor`` of the CPU is spread evenly: ``(1 - floor) p_i + floor/m``
   over the ``m`` eligible harnesses, so a harness that found nothing yet keeps running.
5. **Damping, applied last** (so it can take a harness below the floor):
   - *crash storm*: when the last ``s >= storm_threshold`` fuzzing slices all ended in the
     same crash signature (or all timed out), times ``storm_damping ** (s - threshold + 1)``.
     Such slices are short and find the known bug again; their coverage-per-second looks
     great, which is exactly why they need an explicit brake. Distinct crashes are not damped.
   - *failed starts* (``startup_failed``, ``build_failed``): after ``f`` in a row, times
     ``startup_backoff ** f``, and the planner charges each failure
     ``PlanParams.failure_charge_s`` of virtual CPU and runs at most one job of it at a
     time; at ``max_startup_failures`` in a row the harness is excluded with weight 0 and
     the reason shown in the plan.
   - ``infra_error`` slices are ignored: a lost worker says nothing about the harness.
   The values are then normalized to sum to 1 over the eligible harnesses.

The defaults (``WeightParams``): ``decay`` 0.6 is a half-life of about 1.4 slices (under
three minutes of one harness's CPU): coverage curves flatten fast and a ten-minute campaign
gives each harness a handful of slices, so the estimate must follow within two or three of
them, while the prior (``prior_seconds`` 120, one slice) keeps one lucky slice from
dominating. ``temperature`` 0.25 lets the best harness get up to 55 times the share of one
that finds nothing; ``floor`` 0.1 guarantees every eligible harness ``0.1 / m`` of the CPU.
A storm is 3 slices in a row on the same crash, halving the weight for each; 3 failed
starts in a row exclude a harness, halving its weight after each before that.

Why not the prior art as is. ClusterFuzz (``cron/fuzzer_and_job_weights.py``) recomputes
weights once a day from yesterday's statistics with fixed penalty tiers (0.1 for startup
crashes, 0.5 for frequent crashes, x5 for new targets) and keeps only the harshest: too slow
to react inside a ten-minute campaign, and it penalizes a harness that finds many distinct
crashes like one stuck on a single crash. HypoFuzz (``bayes.py``) runs a softmax over raw
behaviours per second with temperature 1 and mixes in 1% uniform picks: the raw rates carry
units, so the same code is uniform for slow targets and winner-takes-all for fast ones
(their own comment notes zero probabilities), and its estimate (1 / inputs since the last new
behaviour) has no memory beyond the last find. Here the estimate decays smoothly, the
softmax is scale-free, exploration is an explicit floor plus a prior that fades with
evidence, and damping distinguishes a storm from a productive run of crashes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.scheduling.model import (
    HarnessHistory,
    Weight,
    WeightCode,
    WeightParams,
    decay_powers,
)

# Damping never takes a weight to zero: only exclusion does, and says so.
_MIN_DAMPING = 1e-6


@dataclass(frozen=True)
class Evaluation:
    """The weighting rule's result as parallel lists, in the order of the histories given."""

    histories: tuple[HarnessHistory, ...]
    values: list[float]
    codes: list[WeightCode]
    rates: list[float]  # the optimistic rate estimate r_i
    multipliers: list[float]  # the damping applied
    best_rate: float


def evaluate(
    histories: Sequence[HarnessHistory], params: WeightParams, *, checked: bool = False
) -> Evaluation:
    """Apply the weighting rule; O(harnesses) once each history's digest exists.

    ``checked`` skips re-validating histories a ``CampaignState`` has validated already.
    """
    hs = tuple(histories)
    if not checked:
        _check_histories(hs)
    decay = params.decay
    decayed = [h.decayed(decay) for h in hs]
    digests = [h.digest for h in hs]
    max_fail = params.max_startup_failures
    eligible = [d.failures < max_fail for d in digests]

    total_cov = math.fsum(c for (c, _), ok in zip(decayed, eligible, strict=True) if ok)
    total_cpu = math.fsum(t for (_, t), ok in zip(decayed, eligible, strict=True) if ok)
    prior_s = params.prior_seconds
    prior_rate = params.optimism * (total_cov + 1.0) / (total_cpu + prior_s)
    powers = decay_powers(decay, 1 + max((len(d.cpu) for d in digests), default=0))
    priors = [prior_s * powers[len(d.cpu)] for d in digests]
    rates = [(c + prior_rate * p) / (t + p) for (c, t), p in zip(decayed, priors, strict=True)]
    multipliers, codes = _damping(hs, params)
    best = max(
        (r * mult for r, mult, ok in zip(rates, multipliers, eligible, strict=True) if ok),
        default=1.0,
    )

    inv_t = 1.0 / params.temperature
    exp = math.exp
    boltzmann = [
        exp((min(r / best, 1.0) - 1.0) * inv_t) if ok else 0.0
        for r, ok in zip(rates, eligible, strict=True)
    ]
    m = sum(eligible)
    mass = math.fsum(boltzmann) or 1.0
    greedy = (1.0 - params.floor) / mass
    even = params.floor / m if m else 0.0
    raw = [
        mult * (greedy * b + even) if ok else 0.0
        for b, mult, ok in zip(boltzmann, multipliers, eligible, strict=True)
    ]
    total = math.fsum(raw) or 1.0
    return Evaluation(
        histories=hs,
        values=[v / total for v in raw],
        codes=codes,
        rates=rates,
        multipliers=multipliers,
        best_rate=best,
    )


def _check_histories(hs: tuple[HarnessHistory, ...]) -> None:
    names: set[str] = set()
    for h in hs:
        if not isinstance(h, HarnessHistory):
            raise ValueError(f"histories must hold HarnessHistory values, got {h!r}")
        if h.name in names:
            raise ValueError(f"histories has harness {h.name!r} twice")
        names.add(h.name)


def _damping(
    hs: tuple[HarnessHistory, ...], params: WeightParams
) -> tuple[list[float], list[WeightCode]]:
    """Each harness's damping multiplier and weight code (one pass; most harnesses skip out)."""
    threshold, storm_damping = params.storm_threshold, params.storm_damping
    max_fail, backoff = params.max_startup_failures, params.startup_backoff
    multipliers: list[float] = []
    codes: list[WeightCode] = []
    for h in hs:
        d = h.digest
        mult = 1.0
        if d.failures >= max_fail:
            code = WeightCode.EXCLUDED
        elif d.failures:
            mult = backoff**d.failures
            code = WeightCode.BACKOFF
        elif not d.cpu:
            code = WeightCode.EXPLORING
        else:
            code = WeightCode.RATE
        if d.storm >= threshold:
            mult *= storm_damping ** (d.storm - threshold + 1)
            if code is WeightCode.RATE:
                code = WeightCode.STORM
        multipliers.append(max(mult, _MIN_DAMPING))
        codes.append(code)
    return multipliers, codes


def reason(evaluation: Evaluation, index: int, params: WeightParams) -> str:
    """The human-readable reason for one harness's weight."""
    h = evaluation.histories[index]
    d = h.digest
    code = evaluation.codes[index]
    rate = evaluation.rates[index]
    if code is WeightCode.EXCLUDED:
        return (
            f"excluded after {d.failures} failed starts in a row (last: {d.last_failure}); "
            "fix the harness or its build and start a new campaign"
        )
    text = (
        f"no fuzzing slice yet: optimistic prior {rate:.3g} coverage/CPU-s"
        if code is WeightCode.EXPLORING
        else f"{rate:.3g} new coverage/CPU-s over {len(d.cpu)} slices "
        f"(decayed, with prior; best {evaluation.best_rate:.3g})"
    )
    if d.failures:
        text += (
            f"; backing off x{params.startup_backoff**d.failures:.3g} after {d.failures} "
            f"failed start(s) (last: {d.last_failure}), excluded at "
            f"{params.max_startup_failures}"
        )
    if d.storm >= params.storm_threshold:
        what = "timed out" if d.storm_key == "timed_out" else f"crashed with {d.storm_key}"
        mult = max(params.storm_damping ** (d.storm - params.storm_threshold + 1), _MIN_DAMPING)
        text += f"; crash storm: last {d.storm} slices {what}, damped x{mult:.3g}"
    return text


class WeightTable(Mapping[str, Weight]):
    """A read-only mapping name -> Weight that builds each reason only when asked for.

    Planning needs the numbers; the reasons are for people (plan pages, logs), so a plan
    over ten thousand harnesses does not format ten thousand strings nobody reads.
    """

    def __init__(self, evaluation: Evaluation, params: WeightParams) -> None:
        self._evaluation = evaluation
        self._params = params
        self._index: dict[str, int] | None = None

    def _lookup(self) -> dict[str, int]:
        if self._index is None:
            self._index = {h.name: i for i, h in enumerate(self._evaluation.histories)}
        return self._index

    def __getitem__(self, name: str) -> Weight:
        index = self._lookup()[name]
        e = self._evaluation
        return Weight(e.values[index], reason(e, index, self._params), e.codes[index])

    def __iter__(self) -> Iterator[str]:
        return (h.name for h in self._evaluation.histories)

    def __len__(self) -> int:
        return len(self._evaluation.histories)

    def __repr__(self) -> str:
        return f"WeightTable({len(self)} harnesses)"


def weights(
    histories: Sequence[HarnessHistory], *, params: WeightParams | None = None
) -> dict[str, Weight]:
    """Every harness's weight with its reason; eligible weights are positive and sum to 1."""
    params = _check_params(params)
    return dict(WeightTable(evaluate(histories, params), params))


def _check_params(params: WeightParams | None) -> WeightParams:
    if params is None:
        return WeightParams()
    if not isinstance(params, WeightParams):
        raise ValueError(f"params must be WeightParams, got {params!r}")
    return params
