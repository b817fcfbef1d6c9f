"""The scheduler's values: what each slice of a harness produced, the knobs, and the plan.

Every value validates itself on construction and raises ``ValueError`` naming the field and
showing the bad value, so the planning functions can trust what they are given and stay fast.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

# Mirrors workers.contract.OutcomeCode (DESIGN.md, "Identities"); the scheduler imports only
# the standard library, and a unit test keeps the two lists equal.
OUTCOMES = frozenset(
    {"ok", "crashed", "startup_failed", "build_failed", "timed_out", "infra_error"}
)
# Slices in which the engine actually fuzzed: they say something about the coverage rate.
FUZZING_OUTCOMES = frozenset({"ok", "crashed", "timed_out"})
# The harness never got to fuzz: retried with back-off, then excluded.
FAILED_START_OUTCOMES = frozenset({"startup_failed", "build_failed"})
# ``infra_error`` is neither: a lost worker says nothing about the harness, so it is ignored.

_TIMED_OUT_KEY = "timed_out"
_UNKNOWN_CRASH_KEY = "<no signature>"


def check_number(
    where: str, value: object, *, low: float = 0.0, strict: bool = False, high: float | None = None
) -> float:
    """Return ``value`` as a float if it is a finite number in range, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    if value < low or (strict and value == low) or (high is not None and value > high):
        bounds = f"{'>' if strict else '>='} {low}" + (
            f" and <= {high}" if high is not None else ""
        )
        raise ValueError(f"{where} must be {bounds}, got {value!r}")
    return float(value)


def check_int(where: str, value: object, *, low: int = 0) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``low``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def check_name(where: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string, else raise ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SliceResult:
    """What one finished fuzz job (a time slice of one harness) produced."""

    cpu_seconds: float
    new_coverage: int
    crashed: bool = False
    crash_signature: str | None = None
    outcome: str = "ok"

    def __post_init__(self) -> None:
        check_number("SliceResult.cpu_seconds", self.cpu_seconds)
        check_int("SliceResult.new_coverage", self.new_coverage)
        if self.outcome not in OUTCOMES:
            raise ValueError(
                f"SliceResult.outcome must be one of {sorted(OUTCOMES)}, got {self.outcome!r}"
            )
        if not isinstance(self.crashed, bool):
            raise ValueError(f"SliceResult.crashed must be a bool, got {self.crashed!r}")
        if self.crash_signature is not None:
            check_name("SliceResult.crash_signature", self.crash_signature)
        if self.outcome == "crashed" and not self.crashed:
            raise ValueError("SliceResult.outcome is 'crashed' but crashed is False")
        if self.crashed and self.outcome not in FUZZING_OUTCOMES:
            raise ValueError(f"SliceResult.crashed is True but outcome is {self.outcome!r}")
        if self.crash_signature is not None and not self.crashed:
            raise ValueError(
                f"SliceResult.crash_signature is {self.crash_signature!r} but crashed is False"
            )


@dataclass(frozen=True, slots=True)
class Digest:
    """What the weighting rule needs from a history, computed once when the history is built.

    Doing the per-slice work here (once per history value) keeps planning over thousands of
    harnesses free of Python loops over slices; only the decay-weighted sums depend on a
    parameter, and those are memoized on the history per decay value.
    """

    coverage: tuple[float, ...]  # fuzzing slices' new coverage, most recent first
    cpu: tuple[float, ...]  # fuzzing slices' CPU-seconds, most recent first
    fuzz_cpu: float  # CPU-seconds of every fuzzing slice
    failed_start_cpu: tuple[float, ...]  # CPU-seconds of each failed start
    storm: int  # trailing fuzzing slices that ended in the same crash (or time-out)
    storm_key: str | None
    failures: int  # trailing consecutive failed starts (infra errors skipped)
    last_failure: str | None


def digest(slices: tuple[SliceResult, ...]) -> Digest:
    """Fold a history's slices, oldest first, into the values the weighting rule reads."""
    coverage: list[float] = []
    cpu: list[float] = []
    failed: list[float] = []
    storm = failures = 0
    storm_key: str | None = None
    last_failure: str | None = None
    for s in slices:
        outcome = s.outcome
        if outcome in FUZZING_OUTCOMES:
            coverage.append(float(s.new_coverage))
            cpu.append(float(s.cpu_seconds))
            failures = 0
            key = (s.crash_signature or _UNKNOWN_CRASH_KEY) if s.crashed else None
            if key is None and outcome == "timed_out":
                key = _TIMED_OUT_KEY
            if key is None:
                storm, storm_key = 0, None
            elif key == storm_key:
                storm += 1
            else:
                storm, storm_key = 1, key
        elif outcome in FAILED_START_OUTCOMES:
            failed.append(float(s.cpu_seconds))
            failures += 1
            last_failure = outcome
    coverage.reverse()
    cpu.reverse()
    return Digest(
        coverage=tuple(coverage),
        cpu=tuple(cpu),
        fuzz_cpu=math.fsum(cpu),
        failed_start_cpu=tuple(failed),
        storm=storm,
        storm_key=storm_key,
        failures=failures,
        last_failure=last_failure if failures else None,
    )


@dataclass(frozen=True)
class HarnessHistory:
    """A harness's finished slices in this campaign, oldest first."""

    name: str
    slices: tuple[SliceResult, ...] = ()
    digest: Digest = field(init=False, repr=False, compare=False)
    # decay -> (decayed coverage, decayed CPU-seconds); a cache, not part of the value.
    _decayed: dict[float, tuple[float, float]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        check_name("HarnessHistory.name", self.name)
        slices = tuple(self.slices)
        for index, s in enumerate(slices):
            if not isinstance(s, SliceResult):
                raise ValueError(
                    f"HarnessHistory({self.name!r}).slices[{index}] must be a SliceResult, "
                    f"got {s!r}"
                )
        object.__setattr__(self, "slices", slices)
        object.__setattr__(self, "digest", digest(slices))

    def appended(self, result: SliceResult) -> HarnessHistory:
        """This history with one more finished slice."""
        return HarnessHistory(self.name, (*self.slices, result))

    def decayed(self, decay: float) -> tuple[float, float]:
        """Decay-weighted (new coverage, CPU-seconds) over the fuzzing slices, newest at 1."""
        cached = self._decayed.get(decay)
        if cached is None:
            d = self.digest
            if decay == 1.0:
                cached = (math.fsum(d.coverage), d.fuzz_cpu)
            else:
                powers = decay_powers(decay, len(d.cpu))
                cached = (
                    sum(map(operator.mul, d.coverage, powers)),
                    sum(map(operator.mul, d.cpu, powers)),
                )
            self._decayed[decay] = cached
        return cached


_POWERS: dict[float, list[float]] = {}


def decay_powers(decay: float, n: int) -> list[float]:
    """[1, decay, decay**2, ...] with at least ``n`` entries (shared, never mutated by readers)."""
    powers = _POWERS.get(decay)
    if powers is None or len(powers) < n:
        powers = [decay**k for k in range(max(n, 64))]
        if len(_POWERS) > 32:  # many distinct decays: a caller sweeping parameters
            _POWERS.clear()
        _POWERS[decay] = powers
    return powers


class WeightCode(enum.StrEnum):
    """Why a harness has the weight it has (the short form of ``Weight.reason``)."""

    EXPLORING = "exploring"  # no fuzzing slice yet: the optimistic prior alone
    RATE = "rate"  # weighted by its decayed coverage rate
    STORM = "storm"  # damped: recent slices keep ending in the same crash or time-out
    BACKOFF = "backoff"  # damped: recent starts failed; retried with back-off
    EXCLUDED = "excluded"  # too many failed starts in a row: not scheduled any more


@dataclass(frozen=True, slots=True)
class Weight:
    """A harness's share of the campaign's CPU (0 when excluded), and why."""

    value: float
    reason: str
    code: WeightCode


@dataclass(frozen=True)
class WeightParams:
    """The knobs of the weighting rule; the defaults are explained in ``weights``."""

    decay: float = 0.6  # per fuzzing slice: a slice k slices old counts decay**k
    floor: float = 0.1  # share of the CPU spread evenly over every eligible harness
    temperature: float = 0.25  # softmax temperature over the rate normalized to [0, 1]
    prior_seconds: float = 120.0  # CPU-seconds the optimistic prior is worth
    optimism: float = 2.0  # the prior rate, as a multiple of the pooled rate
    storm_threshold: int = 3  # same-crash slices in a row before damping starts
    storm_damping: float = 0.5  # multiplier per storm slice from the threshold on
    max_startup_failures: int = 3  # failed starts in a row before exclusion
    startup_backoff: float = 0.5  # multiplier per failed start in a row

    def __post_init__(self) -> None:
        check_number("WeightParams.decay", self.decay, strict=True, high=1.0)
        check_number("WeightParams.floor", self.floor, high=1.0)
        check_number("WeightParams.temperature", self.temperature, low=0.01)
        check_number("WeightParams.prior_seconds", self.prior_seconds, strict=True)
        check_number("WeightParams.optimism", self.optimism, strict=True)
        check_int("WeightParams.storm_threshold", self.storm_threshold, low=1)
        check_number("WeightParams.storm_damping", self.storm_damping, strict=True, high=1.0)
        check_int("WeightParams.max_startup_failures", self.max_startup_failures, low=1)
        check_number("WeightParams.startup_backoff", self.startup_backoff, strict=True, high=1.0)


@dataclass(frozen=True)
class PlanParams:
    """How a campaign's budget is cut into jobs, plus the weighting knobs."""

    slice_seconds: float = 120.0  # the usual job length
    min_slice_s: float = 10.0  # no shorter job, unless it is the whole remainder
    min_tail_s: float = 2.0  # a remainder below this is not worth a job's start-up
    # Accounting for the stride scheduler (see slicing): what a job costs beyond its own
    # CPU-seconds (workspace, sandbox, corpus sync), and what a failed start counts as.
    job_overhead_s: float = 5.0
    failure_charge_s: float = 120.0
    weights: WeightParams = field(default_factory=WeightParams)

    def __post_init__(self) -> None:
        check_number("PlanParams.min_slice_s", self.min_slice_s, strict=True)
        # At least two minimum slices, so spreading a remainder over whole slices never
        # makes one shorter than the minimum (see slicing.slice_length).
        check_number("PlanParams.slice_seconds", self.slice_seconds, low=2 * self.min_slice_s)
        check_number("PlanParams.min_tail_s", self.min_tail_s, high=self.min_slice_s)
        check_number("PlanParams.job_overhead_s", self.job_overhead_s)
        check_number("PlanParams.failure_charge_s", self.failure_charge_s)
        if not isinstance(self.weights, WeightParams):
            raise ValueError(f"PlanParams.weights must be WeightParams, got {self.weights!r}")


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job dispatched and not finished: its planned seconds are committed budget."""

    harness: str
    seconds: float

    def __post_init__(self) -> None:
        check_name("RunningJob.harness", self.harness)
        check_number("RunningJob.seconds", self.seconds)


@dataclass(frozen=True)
class CampaignState:
    """What the scheduler knows about one running campaign."""

    duration_s: float  # wall-clock seconds of fuzzing
    workers: int  # jobs at once; the budget is duration_s x workers CPU-seconds
    histories: tuple[HarnessHistory, ...]
    cpu_used_s: float = 0.0  # CPU-seconds of finished jobs
    running: tuple[RunningJob, ...] = ()

    def __post_init__(self) -> None:
        check_number("CampaignState.duration_s", self.duration_s, strict=True)
        check_int("CampaignState.workers", self.workers, low=1)
        check_number("CampaignState.cpu_used_s", self.cpu_used_s)
        histories = tuple(self.histories)
        names: set[str] = set()
        for h in histories:
            if not isinstance(h, HarnessHistory):
                raise ValueError(f"CampaignState.histories holds {h!r}, not a HarnessHistory")
            if h.name in names:
                raise ValueError(f"CampaignState.histories has harness {h.name!r} twice")
            names.add(h.name)
        running = tuple(self.running)
        for job in running:
            if not isinstance(job, RunningJob):
                raise ValueError(f"CampaignState.running holds {job!r}, not a RunningJob")
            if job.harness not in names:
                raise ValueError(
                    f"CampaignState.running has a job of {job.harness!r}, "
                    "which has no history (pass an empty one)"
                )
        object.__setattr__(self, "histories", histories)
        object.__setattr__(self, "running", running)

    @property
    def budget_s(self) -> float:
        """The campaign's whole CPU budget: duration x workers."""
        return self.duration_s * self.workers

    @property
    def committed_s(self) -> float:
        """CPU-seconds used by finished jobs plus those reserved by running ones."""
        return self.cpu_used_s + math.fsum(j.seconds for j in self.running)


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One job to dispatch now: which harness, for how many seconds."""

    harness: str
    seconds: float


@dataclass(frozen=True)
class Plan:
    """The jobs to start now, and every harness's weight with its reason."""

    jobs: tuple[PlannedJob, ...]
    weights: Mapping[str, Weight]

    @property
    def excluded(self) -> dict[str, str]:
        """Harnesses no longer scheduled, with the reason."""
        return {n: w.reason for n, w in self.weights.items() if w.code is WeightCode.EXCLUDED}


@dataclass(frozen=True)
class CampaignDemand:
    """A running campaign asking for worker slots."""

    campaign_id: str
    priority: float  # > 0; twice the priority, twice the CPU while both have work
    remaining_cpu_s: float  # budget not yet used or committed
    served_cpu_s: float = 0.0  # CPU-seconds used or committed so far
    running: int = 0  # jobs running now
    max_running: int = 1  # its workers: never more jobs at once

    def __post_init__(self) -> None:
        check_name("CampaignDemand.campaign_id", self.campaign_id)
        where = f"CampaignDemand({self.campaign_id!r})"
        check_number(f"{where}.priority", self.priority, strict=True)
        check_number(f"{where}.remaining_cpu_s", self.remaining_cpu_s)
        check_number(f"{where}.served_cpu_s", self.served_cpu_s)
        check_int(f"{where}.running", self.running)
        check_int(f"{where}.max_running", self.max_running, low=1)
