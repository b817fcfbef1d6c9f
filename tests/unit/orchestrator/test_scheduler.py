"""The campaign scheduler: budget and slices, adaptive weights, fair share, determinism."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.scheduler import (
    OUTCOMES,
    CampaignDemand,
    CampaignState,
    HarnessHistory,
    PlannedJob,
    PlanParams,
    RunningJob,
    SliceResult,
    WeightCode,
    WeightParams,
    next_jobs,
    plan,
    share_slots,
    slice_length,
    weights,
)
from workers.contract import OutcomeCode

PARAMS = PlanParams()
SLICE = PARAMS.slice_seconds


def ok(cov: int = 0, cpu: float = SLICE) -> SliceResult:
    return SliceResult(cpu, cov)


def crash(sig: str = "a" * 40, cov: int = 5, cpu: float = 3.0) -> SliceResult:
    return SliceResult(cpu, cov, crashed=True, crash_signature=sig, outcome="crashed")


def failed_start(outcome: str = "startup_failed") -> SliceResult:
    return SliceResult(0.5, 0, outcome=outcome)


def history(name: str, *slices: SliceResult) -> HarnessHistory:
    return HarnessHistory(name, slices)


# --- a simple campaign simulator ---------------------------------------------------------

# What a harness produces in one slice: (harness, its slice number, seconds) -> result.
Model = Callable[[str, int, float], SliceResult]


@dataclass
class Simulation:
    """The outcome of driving ``next_jobs`` through a whole campaign."""

    jobs: list[tuple[float, PlannedJob]] = field(default_factory=list)  # (start, job)
    end_s: float = 0.0
    cpu_used_s: float = 0.0
    histories: dict[str, HarnessHistory] = field(default_factory=dict)

    def cpu_of(self, harness: str) -> float:
        return sum(job.seconds for _, job in self.jobs if job.harness == harness)


def simulate(
    names: list[str],
    model: Model,
    *,
    duration_s: float = 3600.0,
    workers: int = 4,
    params: PlanParams = PARAMS,
    overhead_s: float = 0.0,
) -> Simulation:
    """Run a campaign: plan, let jobs run (plus start-up overhead), record, repeat."""
    sim = Simulation(histories={n: HarnessHistory(n) for n in names})
    running: list[tuple[float, PlannedJob]] = []  # (end, job)
    now = 0.0
    while True:
        state = CampaignState(
            duration_s=duration_s,
            workers=workers,
            histories=tuple(sim.histories.values()),
            cpu_used_s=sim.cpu_used_s,
            running=tuple(RunningJob(j.harness, j.seconds) for _, j in running),
        )
        planned = next_jobs(
            state, free_slots=workers - len(running), now_elapsed_s=now, params=params
        )
        for job in planned:
            sim.jobs.append((now, job))
            running.append((now + overhead_s + job.seconds, job))
        if not running:
            sim.end_s = now
            return sim
        running.sort(key=lambda r: r[0])
        now, job = running.pop(0)
        h = sim.histories[job.harness]
        sim.histories[job.harness] = h.appended(model(job.harness, len(h.slices), job.seconds))
        sim.cpu_used_s += job.seconds


def productive_and_stagnant(name: str, k: int, seconds: float) -> SliceResult:
    # "good" keeps finding (fewer with time), "flat" never finds anything.
    return SliceResult(seconds, max(1, 200 // (k + 1)) if name == "good" else 0)


# --- values validate themselves ----------------------------------------------------------


def test_outcome_codes_match_the_worker_contract() -> None:
    assert {c.value for c in OutcomeCode} == OUTCOMES


@pytest.mark.parametrize(
    ("build", "shown"),
    [
        (lambda: SliceResult(-1.0, 0), "-1.0"),
        (lambda: SliceResult(math.nan, 0), "nan"),
        (lambda: SliceResult(1.0, True), "True"),
        (lambda: SliceResult(1.0, -3), "-3"),
        (lambda: SliceResult(1.0, 0, outcome="exploded"), "'exploded'"),
        (lambda: SliceResult(1.0, 0, outcome="crashed"), "'crashed'"),
        (lambda: SliceResult(1.0, 0, crash_signature="abc"), "'abc'"),
        (lambda: SliceResult(1.0, 0, crashed=True, outcome="startup_failed"), "startup_failed"),
        (lambda: HarnessHistory(""), "''"),
        (lambda: HarnessHistory("h", (1,)), "1"),  # type: ignore[arg-type]
        (lambda: CampaignState(600, 0, ()), "0"),
        (lambda: CampaignState(-5, 1, ()), "-5"),
        (lambda: CampaignState(600, 1, (history("h"), history("h"))), "'h'"),
        (lambda: CampaignState(600, 1, (history("h"),), running=(RunningJob("x", 1),)), "'x'"),
        (lambda: WeightParams(decay=0.0), "0.0"),
        (lambda: WeightParams(floor=1.5), "1.5"),
        (lambda: WeightParams(temperature=0.0), "0.0"),
        (lambda: WeightParams(storm_threshold=0), "0"),
        (lambda: PlanParams(slice_seconds=15.0), "15.0"),
        (lambda: CampaignDemand("c", 0, 100.0), "0"),
        (lambda: CampaignDemand("c", 1, math.inf), "inf"),
        (lambda: CampaignDemand("c", 1, 100.0, max_running=0), "0"),
    ],
)
def test_bad_values_raise_value_error_showing_the_value(
    build: Callable[[], object], shown: str
) -> None:
    with pytest.raises(ValueError, match=r".") as info:
        build()
    assert shown in str(info.value)


def test_planning_functions_validate_their_arguments() -> None:
    state = CampaignState(600, 2, (history("h"),))
    with pytest.raises(ValueError, match=r"free_slots.*-1"):
        next_jobs(state, free_slots=-1, now_elapsed_s=0.0)
    with pytest.raises(ValueError, match=r"now_elapsed_s.*nan"):
        next_jobs(state, free_slots=1, now_elapsed_s=math.nan)
    with pytest.raises(ValueError, match="histories has harness 'h' twice"):
        weights([history("h"), history("h")])
    with pytest.raises(ValueError, match="campaign 'c' twice"):
        share_slots([CampaignDemand("c", 1, 10.0), CampaignDemand("c", 1, 10.0)], 1)
    with pytest.raises(ValueError, match=r"free_slots.*2\.5"):
        share_slots([], 2.5)  # type: ignore[arg-type]


# --- slices and budget --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wall_left", "expected"),
    [
        (600.0, 120.0),  # whole slices
        (599.0, 119.8),  # spread over the slices that are left, not a stub at the end
        (130.0, 65.0),  # two slices of 65, not 120 + 10
        (100.0, 100.0),  # the whole remainder
        (5.0, 5.0),  # below the minimum: the whole remainder
        (1.0, 0.0),  # below the tail: not worth a start-up
    ],
)
def test_slice_length_fits_the_remaining_wall_time(wall_left: float, expected: float) -> None:
    assert slice_length(wall_left, PARAMS) == pytest.approx(expected)


def test_a_campaign_stays_within_budget_and_ends_on_time() -> None:
    sim = simulate(["good", "flat", "third"], productive_and_stagnant, overhead_s=3.0)
    budget = 3600.0 * 4
    assert sum(job.seconds for _, job in sim.jobs) <= budget + 1e-6
    assert sim.end_s <= 3600.0 + SLICE
    # And it used the budget it had: the overhead costs wall time, not planned CPU.
    assert sim.cpu_used_s >= 0.95 * budget


def test_slices_shorten_near_the_end_but_never_below_the_minimum() -> None:
    sim = simulate(["good", "flat"], productive_and_stagnant, duration_s=1000.0, workers=2)
    lengths = [job.seconds for _, job in sim.jobs]
    assert max(lengths) <= SLICE + 1e-9
    late = [job.seconds for start, job in sim.jobs if start > 1000.0 - 2 * SLICE]
    assert late
    assert all(s < SLICE for s in late)
    assert min(lengths) >= PARAMS.min_slice_s
    # Every worker's chain of jobs ends exactly at the deadline.
    assert sim.end_s == pytest.approx(1000.0)


def test_planned_seconds_never_exceed_what_is_left_of_the_budget() -> None:
    state = CampaignState(
        duration_s=600.0,
        workers=4,
        histories=(history("a"), history("b")),
        cpu_used_s=2000.0,
        running=(RunningJob("a", 120.0), RunningJob("b", 120.0)),
    )
    jobs = next_jobs(state, free_slots=4, now_elapsed_s=120.0)
    left = 600.0 * 4 - 2000.0 - 240.0
    assert len(jobs) == 2  # four workers, two busy
    assert sum(j.seconds for j in jobs) <= left + 1e-9
    assert jobs[0].seconds == 120.0
    assert jobs[1].seconds == pytest.approx(left - 120.0)


def test_a_leftover_sliver_is_folded_into_the_last_job() -> None:
    state = CampaignState(duration_s=600.0, workers=1, histories=(history("a"),), cpu_used_s=475.0)
    assert next_jobs(state, free_slots=1, now_elapsed_s=0.0) == [PlannedJob("a", 125.0)]


def test_nothing_is_planned_after_the_deadline_or_without_budget() -> None:
    state = CampaignState(duration_s=600.0, workers=2, histories=(history("a"),))
    assert next_jobs(state, free_slots=2, now_elapsed_s=600.0) == []
    spent = CampaignState(600.0, 2, (history("a"),), cpu_used_s=1200.0)
    assert next_jobs(spent, free_slots=2, now_elapsed_s=10.0) == []


# --- adaptive weights ---------------------------------------------------------------------


def test_a_harness_finding_coverage_gets_more_slices_and_the_stagnant_one_its_floor() -> None:
    sim = simulate(["good", "flat"], productive_and_stagnant)
    good, flat = sim.cpu_of("good"), sim.cpu_of("flat")
    assert good > 3 * flat
    assert flat > 0


def test_the_floor_holds_against_a_harness_that_never_stops_finding() -> None:
    def model(name: str, _k: int, seconds: float) -> SliceResult:
        return SliceResult(seconds, 50 if name == "good" else 0)

    sim = simulate(["good", "flat"], model)
    good, flat = sim.cpu_of("good"), sim.cpu_of("flat")
    floor_share = WeightParams().floor / 2
    assert flat >= floor_share * (good + flat) - SLICE
    assert good > 10 * flat


def test_recent_slices_count_more_than_old_ones() -> None:
    faded = history("faded", ok(500), ok(500), *[ok(0)] * 6)
    steady = history("steady", *[ok(20)] * 8)
    w = weights([faded, steady])
    assert w["steady"].value > w["faded"].value


def test_an_untried_harness_is_explored_before_a_stagnant_one() -> None:
    w = weights([history("new"), history("flat", *[ok(0)] * 5), history("good", *[ok(50)] * 5)])
    assert w["new"].code is WeightCode.EXPLORING
    assert w["flat"].value < w["new"].value
    assert "no fuzzing slice yet" in w["new"].reason


def test_the_jobs_of_one_plan_follow_the_weights() -> None:
    # Short slices so far: nearly all of the CPU is still to be shared out.
    hs = (history("good", *[ok(100, cpu=1.0)] * 3), history("flat", *[ok(0, cpu=1.0)] * 3))
    state = CampaignState(3600.0, 20, hs)
    p = plan(state, free_slots=20, now_elapsed_s=0.0)
    counts = Counter(j.harness for j in p.jobs)
    for name in ("good", "flat"):
        assert abs(counts[name] - 20 * p.weights[name].value) <= 1, counts


def test_each_untried_harness_runs_once_before_any_runs_twice() -> None:
    names = [f"h{i}" for i in range(6)]
    state = CampaignState(600.0, 6, tuple(history(n) for n in names))
    jobs = next_jobs(state, free_slots=6, now_elapsed_s=0.0)
    assert sorted(j.harness for j in jobs) == names


def test_a_crash_storm_is_damped_but_distinct_crashes_are_not() -> None:
    storm = history("storm", ok(30), crash(), crash(), crash(), crash())
    distinct = history("distinct", ok(30), *(crash(sig=c * 40) for c in "abcd"))
    calm = history("calm", ok(30), *[ok(5, cpu=3.0)] * 4)
    w = weights([storm, distinct, calm])
    assert w["storm"].code is WeightCode.STORM
    assert "crash storm" in w["storm"].reason
    assert w["distinct"].code is WeightCode.RATE
    assert w["storm"].value < w["distinct"].value / 2
    assert w["storm"].value < w["calm"].value / 2


def test_a_crash_storm_does_not_flatten_the_other_harnesses() -> None:
    # A storm's slices are short, so its raw rate is the highest of all; it must not set
    # the scale the others are measured against.
    good, flat = history("good", *[ok(60)] * 4), history("flat", *[ok(0)] * 4)
    storm = history("storm", *[crash(cov=5, cpu=2.0)] * 6)
    alone = weights([good, flat])
    beside = weights([good, flat, storm])
    ratio = alone["good"].value / alone["flat"].value
    assert ratio > 5
    # A third harness changes the shares a little (the floor is split three ways), not
    # the verdict.
    assert beside["good"].value / beside["flat"].value > ratio / 1.5


def test_a_longer_storm_is_damped_harder() -> None:
    short = history("short", *[crash()] * 3)
    long = history("long", *[crash()] * 6)
    w = weights([short, long])
    assert w["long"].value < w["short"].value


def test_repeated_time_outs_count_as_a_storm() -> None:
    hung = history("hung", *[SliceResult(SLICE, 0, outcome="timed_out")] * 4)
    w = weights([hung, history("other", *[ok(0)] * 4)])
    assert w["hung"].code is WeightCode.STORM
    assert "timed out" in w["hung"].reason


def test_startup_failures_back_off_then_exclude_with_a_reason() -> None:
    params = WeightParams(max_startup_failures=3)
    healthy = history("healthy", ok(0))
    once = weights([healthy, history("bad", ok(0), failed_start())], params=params)
    twice = weights([healthy, history("bad", ok(0), failed_start(), failed_start())], params=params)
    assert once["bad"].code is WeightCode.BACKOFF
    assert 0 < twice["bad"].value < once["bad"].value < once["healthy"].value
    thrice = history("bad", ok(0), failed_start(), failed_start(), failed_start("build_failed"))
    w = weights([healthy, thrice], params=params)
    assert w["bad"].code is WeightCode.EXCLUDED
    assert w["bad"].value == 0.0
    assert "3 failed starts in a row" in w["bad"].reason
    assert "build_failed" in w["bad"].reason
    assert w["healthy"].value == pytest.approx(1.0)


def test_an_excluded_harness_is_never_planned_and_the_plan_says_why() -> None:
    bad = history("bad", *[failed_start()] * 3)
    state = CampaignState(600.0, 4, (bad, history("good")))
    p = plan(state, free_slots=4, now_elapsed_s=0.0)
    assert {j.harness for j in p.jobs} == {"good"}
    assert "excluded after 3 failed starts" in p.excluded["bad"]
    only_bad = CampaignState(600.0, 4, (bad,))
    assert next_jobs(only_bad, free_slots=4, now_elapsed_s=0.0) == []


def test_a_successful_start_clears_the_failures() -> None:
    h = history("h", failed_start(), failed_start(), ok(10))
    assert weights([h])["h"].code is WeightCode.RATE


def test_a_harness_backing_off_runs_one_job_at_a_time() -> None:
    state = CampaignState(600.0, 4, (history("flaky", failed_start()),))
    assert len(next_jobs(state, free_slots=4, now_elapsed_s=0.0)) == 1
    busy = CampaignState(
        600.0, 4, (history("flaky", failed_start()),), running=(RunningJob("flaky", 120.0),)
    )
    assert next_jobs(busy, free_slots=3, now_elapsed_s=0.0) == []


def test_a_failed_start_is_retried_after_the_others_had_their_turn() -> None:
    # Each failed start is charged failure_charge_s of virtual CPU, so the retry waits.
    # No weight damping here, so only the charge can put "other" (a later name) first.
    params = PlanParams(weights=WeightParams(startup_backoff=1.0))
    flaky = history("flaky", ok(10), failed_start())
    other = history("other", ok(10))
    state = CampaignState(600.0, 1, (flaky, other))
    first = next_jobs(state, free_slots=1, now_elapsed_s=0.0, params=params)
    assert first[0].harness == "other"


def test_infra_errors_say_nothing_about_the_harness() -> None:
    plain = weights([history("a", ok(10), ok(0)), history("b", ok(5))])
    lost = SliceResult(1.0, 0, outcome="infra_error")
    noisy = weights([history("a", lost, ok(10), lost, ok(0), lost), history("b", ok(5))])
    assert noisy["a"] == plain["a"]


def test_the_same_inputs_give_the_same_plan() -> None:
    def state() -> CampaignState:
        rng = random.Random(7)
        hs = tuple(
            history(f"h{i}", *[ok(rng.randint(0, 9)) for _ in range(rng.randint(0, 5))])
            for i in range(50)
        )
        return CampaignState(3600.0, 8, hs, cpu_used_s=500.0)

    first = plan(state(), free_slots=8, now_elapsed_s=300.0)
    again = plan(state(), free_slots=8, now_elapsed_s=300.0)
    assert first.jobs == again.jobs
    assert dict(first.weights) == dict(again.weights)
    assert len({j.harness for j in first.jobs}) > 1


# --- fair share between campaigns ----------------------------------------------------------


def run_fleet(
    demands: dict[str, float],
    *,
    slots: int,
    hours: float = 1.0,
    joins: dict[str, float] | None = None,
    seed: int = 3,
) -> tuple[dict[str, float], list[dict[str, int]]]:
    """Share ``slots`` between campaigns (id -> priority) for an hour of jittered slices."""
    rng = random.Random(seed)
    joins = joins or {}
    served = dict.fromkeys(demands, 0.0)
    running: list[tuple[float, str]] = []
    held_log: list[dict[str, int]] = []
    now = 0.0
    while now < hours * 3600.0:
        active = [c for c in demands if joins.get(c, 0.0) <= now]
        held = Counter(c for _, c in running)
        asked = [
            CampaignDemand(c, demands[c], 1e9, served[c], running=held[c], max_running=slots)
            for c in active
        ]
        given = share_slots(asked, slots - len(running))
        for c, n in given.items():
            for _ in range(n):
                seconds = rng.uniform(90.0, 120.0)
                served[c] += seconds
                running.append((now + seconds, c))
        held_log.append(Counter(c for _, c in running))
        running.sort()
        now = running.pop(0)[0]
    return served, held_log


def test_priorities_two_to_one_get_cpu_two_to_one_over_an_hour() -> None:
    for slots in (3, 4, 7):
        served, _ = run_fleet({"high": 2.0, "low": 1.0}, slots=slots)
        assert served["high"] / served["low"] == pytest.approx(2.0, rel=0.1), slots


def test_three_priorities_share_in_proportion() -> None:
    served, _ = run_fleet({"a": 3.0, "b": 2.0, "c": 1.0}, slots=5)
    total = sum(served.values())
    for c, p in {"a": 3, "b": 2, "c": 1}.items():
        assert served[c] / total == pytest.approx(p / 6, rel=0.12), c


def test_no_campaign_starves() -> None:
    # Far more campaigns than slots, and one with a huge priority.
    demands = {"vip": 100.0, **{f"c{i}": 1.0 for i in range(6)}}
    served, _ = run_fleet(demands, slots=2)
    assert all(served[c] > 0 for c in demands)
    assert served["vip"] > max(served[c] for c in demands if c != "vip")


def test_a_late_campaign_gets_its_share_not_everything() -> None:
    _, held_log = run_fleet({"early": 1.0, "late": 1.0}, slots=4, joins={"late": 1800.0})
    after = held_log[-len(held_log) // 3 :]
    assert all(h["early"] >= 2 for h in after)
    assert any(h["late"] >= 2 for h in after)


def test_whole_quotas_come_before_the_fractions() -> None:
    # Quotas 2.5, 1.25, 1.25: "old" is owed two whole slots even though the newcomers have
    # been served less; the fifth slot goes by service, then by id.
    asked = [
        CampaignDemand("old", 2, 1e6, served_cpu_s=1e5, max_running=5),
        CampaignDemand("new1", 1, 1e6, max_running=5),
        CampaignDemand("new2", 1, 1e6, max_running=5),
    ]
    assert share_slots(asked, 5) == {"old": 2, "new1": 2, "new2": 1}


def test_share_slots_respects_demand_and_breaks_ties_deterministically() -> None:
    asked = [
        CampaignDemand("b", 1, 1000.0),
        CampaignDemand("a", 1, 1000.0),
        CampaignDemand("done", 5, 0.0),
        CampaignDemand("small", 5, 15.0, max_running=8),
    ]
    given = share_slots(asked, 1)
    assert given == {"b": 0, "a": 0, "done": 0, "small": 1}
    given = share_slots(asked, 10)
    assert given == {"b": 1, "a": 1, "done": 0, "small": 2}
    assert share_slots(asked[:2], 1) == {"b": 0, "a": 1}


# --- properties -----------------------------------------------------------------------------

outcomes = st.sampled_from(sorted(OUTCOMES))


@st.composite
def slice_results(draw: st.DrawFn) -> SliceResult:
    outcome = draw(outcomes)
    crashed = outcome == "crashed" or (outcome in ("ok", "timed_out") and draw(st.booleans()))
    signature = draw(st.sampled_from([None, "a" * 40, "b" * 40])) if crashed else None
    cpu = draw(st.floats(0.0, 1e5, allow_nan=False))
    return SliceResult(cpu, draw(st.integers(0, 10**6)), crashed, signature, outcome)


@st.composite
def harness_histories(draw: st.DrawFn) -> list[HarnessHistory]:
    n = draw(st.integers(1, 8))
    return [
        HarnessHistory(f"h{i}", tuple(draw(st.lists(slice_results(), max_size=12))))
        for i in range(n)
    ]


weight_params = st.builds(
    WeightParams,
    decay=st.floats(0.05, 1.0),
    floor=st.floats(0.0, 1.0),
    temperature=st.floats(0.01, 10.0),
    storm_threshold=st.integers(1, 5),
    max_startup_failures=st.integers(1, 5),
)


@settings(max_examples=300, deadline=None)
@given(harness_histories(), weight_params)
def test_weights_are_a_distribution_over_eligible_harnesses(
    hs: list[HarnessHistory], params: WeightParams
) -> None:
    w = weights(hs, params=params)
    assert set(w) == {h.name for h in hs}
    eligible = [x for x in w.values() if x.code is not WeightCode.EXCLUDED]
    assert all(math.isfinite(x.value) for x in w.values())
    assert all(x.value > 0 for x in eligible)
    assert all(x.value == 0 for x in w.values() if x.code is WeightCode.EXCLUDED)
    if eligible:
        assert math.fsum(x.value for x in eligible) == pytest.approx(1.0)
    assert all(x.reason for x in w.values())


@settings(max_examples=300, deadline=None)
@given(
    hs=harness_histories(),
    duration=st.floats(1.0, 1e5),
    workers=st.integers(1, 64),
    used_fraction=st.floats(0.0, 1.2),
    elapsed_fraction=st.floats(0.0, 1.1),
    free=st.integers(0, 80),
    running=st.integers(0, 4),
)
def test_planned_jobs_fit_the_budget_and_the_wall_time(
    *,
    hs: list[HarnessHistory],
    duration: float,
    workers: int,
    used_fraction: float,
    elapsed_fraction: float,
    free: int,
    running: int,
) -> None:
    now = duration * elapsed_fraction
    jobs_running = tuple(RunningJob(hs[i % len(hs)].name, 60.0) for i in range(running))
    state = CampaignState(duration, workers, tuple(hs), duration * workers * used_fraction,
                          jobs_running)  # fmt: skip
    p = plan(state, free_slots=free, now_elapsed_s=now)
    left = state.budget_s - state.committed_s
    assert len(p.jobs) <= max(0, min(free, workers - running))
    assert math.fsum(j.seconds for j in p.jobs) <= max(0.0, left) + 1e-6
    for job in p.jobs:
        assert PARAMS.min_tail_s <= job.seconds <= max(SLICE, duration - now) + 1e-9
        assert job.seconds <= duration - now + 1e-9
        assert p.weights[job.harness].code is not WeightCode.EXCLUDED
    assert p.jobs == plan(state, free_slots=free, now_elapsed_s=now).jobs


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 100.0),
            st.floats(0.0, 1e5),
            st.floats(0.0, 1e6),
            st.integers(0, 8),
            st.integers(1, 8),
        ),
        max_size=8,
    ),
    st.integers(0, 40),
)
def test_share_slots_gives_out_what_is_free_and_wanted(
    rows: list[tuple[float, float, float, int, int]], free: int
) -> None:
    asked = [
        CampaignDemand(f"c{i}", p, rem, served, running=min(run, cap), max_running=cap)
        for i, (p, rem, served, run, cap) in enumerate(rows)
    ]
    given = share_slots(asked, free)
    assert set(given) == {c.campaign_id for c in asked}
    wants = {
        c.campaign_id: 0
        if c.remaining_cpu_s <= 0
        else min(c.max_running - c.running, math.ceil(c.remaining_cpu_s / 10.0))
        for c in asked
    }
    assert all(0 <= given[c] <= wants[c] for c in given)
    assert sum(given.values()) == min(free, sum(wants.values()))
