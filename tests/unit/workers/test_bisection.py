"""The pure bisection search, over fake histories and a fake probe built from a table."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.bisection import (
    Fix,
    Introduction,
    ProbeResult,
    Verdict,
    find_fix,
    find_introduction,
)

B, G, S, U = Verdict.BAD, Verdict.GOOD, Verdict.SKIP, Verdict.UNRUNNABLE


def shas(n: int) -> list[str]:
    return [f"c{i:03d}" for i in range(n)]


@dataclass
class FakeProbe:
    """Answers from a table of verdicts by index; indexes in ``flaky`` flip on a re-test."""

    history: list[str]
    verdict_at: Callable[[int], Verdict]
    forbidden: frozenset[int]  # the known ends: probing them is a bug in the search
    flaky: frozenset[int] = frozenset()
    calls: list[str] = field(default_factory=list)

    def __call__(self, sha: str) -> ProbeResult:
        index = self.history.index(sha)
        assert index not in self.forbidden, f"probed known end {sha}"
        verdict = self.verdict_at(index)
        if index in self.flaky and sha in self.calls:
            verdict = G if verdict is B else B
        self.calls.append(sha)
        return ProbeResult(verdict, 0 if verdict is S else 1)


def intro_probe(
    n: int,
    first_bad: int,
    *,
    skip: Collection[int] = (),
    unrunnable_from: int | None = None,
    flaky: Collection[int] = (),
) -> FakeProbe:
    """Newest first: indexes 0..first_bad crash, older ones do not."""

    def verdict_at(i: int) -> Verdict:
        if i in skip:
            return S
        if unrunnable_from is not None and i >= unrunnable_from:
            return U
        return B if i <= first_bad else G

    return FakeProbe(shas(n), verdict_at, frozenset({0}), frozenset(flaky))


def fix_probe(
    n: int,
    first_good: int,
    *,
    skip: Collection[int] = (),
    unrunnable: Collection[int] = (),
    flaky: Collection[int] = (),
) -> FakeProbe:
    """Oldest first: indexes before first_good crash, the rest do not."""

    def verdict_at(i: int) -> Verdict:
        if i in skip:
            return S
        if i in unrunnable:
            return U
        return B if i < first_good else G

    return FakeProbe(shas(n), verdict_at, frozenset({0, n - 1}), frozenset(flaky))


def run_intro(probe: FakeProbe) -> Introduction:
    result = find_introduction(probe.history, probe)
    # The record is honest: every call the probe saw, in order, and one run per non-skip.
    assert [sha for sha, _ in result.probes] == probe.calls
    assert result.steps == sum(v is not S for _, v in result.probes)
    return result


def run_fix(probe: FakeProbe) -> Fix:
    result = find_fix(probe.history, probe)
    assert [sha for sha, _ in result.probes] == probe.calls
    assert result.steps == sum(v is not S for _, v in result.probes)
    return result


def seq(*pairs: tuple[int, Verdict]) -> tuple[tuple[str, Verdict], ...]:
    return tuple((f"c{i:03d}", v) for i, v in pairs)


# --- find_introduction: hand-worked cases ------------------------------------------------


def test_intro_d1_is_one_probe_and_two_confirmations() -> None:
    r = run_intro(intro_probe(10, 0))
    assert (r.first_bad, r.last_good, r.steps) == ("c000", "c001", 3)
    assert r.probes == seq((1, G), (1, G), (1, G))
    assert (r.confidence, r.note, r.boundary, r.skipped) == ("high", None, None, ())


def test_intro_d2() -> None:
    r = run_intro(intro_probe(10, 1))
    assert (r.first_bad, r.last_good, r.steps) == ("c001", "c002", 4)
    assert r.probes == seq((1, B), (2, G), (2, G), (2, G))


def test_intro_d5_gallops_then_halves() -> None:
    r = run_intro(intro_probe(20, 4))
    assert (r.first_bad, r.last_good, r.steps) == ("c004", "c005", 8)
    assert r.probes == seq((1, B), (2, B), (4, B), (8, G), (6, G), (5, G), (5, G), (5, G))
    assert r.confidence == "high"


def test_intro_d37_meets_the_bound_exactly() -> None:
    r = run_intro(intro_probe(100, 36))
    assert (r.first_bad, r.last_good) == ("c036", "c037")
    gallop = [(1, B), (2, B), (4, B), (8, B), (16, B), (32, B), (64, G)]
    halving = [(48, G), (40, G), (36, B), (38, G), (37, G)]
    assert r.probes == seq(*gallop, *halving, (37, G), (37, G))
    assert r.steps == 14 == 2 * math.ceil(math.log2(37)) + 2


def test_intro_gallop_is_clamped_to_the_oldest_commit() -> None:
    r = run_intro(intro_probe(50, 36))
    assert (r.first_bad, r.last_good, r.steps) == ("c036", "c037", 13)
    assert r.probes[6:] == seq((49, G), (40, G), (36, B), (38, G), (37, G), (37, G), (37, G))


def test_intro_bad_at_root() -> None:
    r = run_intro(intro_probe(6, 5))
    assert (r.first_bad, r.last_good, r.steps) == ("c005", None, 4)
    assert r.probes == seq((1, B), (2, B), (4, B), (5, B))
    assert r.confidence == "low"
    assert r.note == "reproduces at the oldest commit tested (c005)"


def test_intro_only_the_crash_commit() -> None:
    r = run_intro(intro_probe(1, 0))
    assert (r.first_bad, r.last_good, r.steps, r.probes) == ("c000", None, 0, ())
    assert (r.confidence, r.note) == ("low", "reproduces at the oldest commit tested (c000)")


def test_intro_note_shortens_the_sha() -> None:
    history = ["a" * 40]
    r = find_introduction(history, FakeProbe(history, lambda i: B, frozenset({0})))
    assert r.note == f"reproduces at the oldest commit tested ({'a' * 12})"


def test_intro_skip_during_gallop_keeps_galloping() -> None:
    r = run_intro(intro_probe(20, 4, skip={2}))
    assert (r.first_bad, r.last_good, r.steps) == ("c004", "c005", 7)
    assert r.probes == seq((1, B), (2, S), (4, B), (8, G), (6, G), (5, G), (5, G), (5, G))
    assert r.skipped == ("c002",)
    assert r.confidence == "high"


def test_intro_skip_at_midpoint_tries_the_nearest_commit() -> None:
    r = run_intro(intro_probe(20, 4, skip={6}))
    assert (r.first_bad, r.last_good, r.steps) == ("c004", "c005", 7)
    assert r.probes == seq((1, B), (2, B), (4, B), (8, G), (6, S), (5, G), (5, G), (5, G))
    assert (r.skipped, r.confidence) == (("c006",), "high")


def test_intro_all_skipped_interval_is_widened() -> None:
    r = run_intro(intro_probe(20, 4, skip={5, 6}))
    # Midpoint 6 fails to build, then 5 (nearest, lower first), then 7 on the other side.
    assert r.probes == seq((1, B), (2, B), (4, B), (8, G), (6, S), (5, S), (7, G), (7, G), (7, G))
    assert (r.first_bad, r.last_good, r.steps) == ("c004", "c007", 7)
    assert r.skipped == ("c006", "c005")
    assert r.confidence == "low"
    assert r.note == "2 commits between last good and first bad could not be built"


def test_intro_skipped_oldest_commits_leave_no_last_good() -> None:
    r = run_intro(intro_probe(6, 5, skip={5}))
    assert r.probes == seq((1, B), (2, B), (4, B), (5, S))
    assert (r.first_bad, r.last_good, r.skipped) == ("c004", None, ("c005",))
    assert r.note == (
        "reproduces at the oldest commit tested (c004); 1 commit older than it could not be built"
    )


def test_intro_skipped_oldest_commit_still_searches_what_is_left() -> None:
    r = run_intro(intro_probe(6, 2, skip={4, 5}))
    assert r.probes == seq((1, B), (2, B), (4, S), (5, S), (3, G), (3, G), (3, G))
    assert (r.first_bad, r.last_good, r.confidence) == ("c002", "c003", "high")


def test_intro_unrunnable_boundary() -> None:
    r = run_intro(intro_probe(30, 10, unrunnable_from=6))
    assert r.probes == seq((1, B), (2, B), (4, B), (8, U), (6, U), (5, B))
    assert (r.first_bad, r.last_good, r.boundary, r.steps) == ("c005", None, "c006", 6)
    assert (r.confidence, r.note) == ("low", "harness cannot start before c005")


def test_intro_unrunnable_superseded_by_a_real_good() -> None:
    r = run_intro(intro_probe(30, 4, unrunnable_from=7))
    assert r.probes == seq((1, B), (2, B), (4, B), (8, U), (6, G), (5, G), (5, G), (5, G))
    assert (r.first_bad, r.last_good, r.boundary, r.confidence) == ("c004", "c005", None, "high")


def test_intro_flaky_confirmation_lowers_confidence() -> None:
    r = run_intro(intro_probe(20, 4, flaky={5}))
    # The first re-test reproduces; the second is not worth running.
    assert r.probes == seq((1, B), (2, B), (4, B), (8, G), (6, G), (5, G), (5, B))
    assert (r.first_bad, r.last_good, r.steps) == ("c004", "c005", 7)
    assert r.confidence == "low"
    assert r.note == "last good commit c005 reproduced on a re-test (flaky)"


def test_intro_confirm_runs_is_honoured() -> None:
    probe = intro_probe(10, 0)
    r = find_introduction(probe.history, probe, confirm_runs=0)
    assert r.probes == seq((1, G))
    assert r.steps == 1


def test_intro_counts_every_run_a_probe_reports() -> None:
    def probe(sha: str) -> ProbeResult:
        return ProbeResult(G, 5)

    r = find_introduction(shas(4), probe)
    assert r.steps == 15


# --- find_fix: hand-worked cases ---------------------------------------------------------


def test_fix_adjacent_ends_need_no_probe() -> None:
    r = run_fix(fix_probe(2, 1))
    assert (r.first_good, r.last_crashing, r.steps, r.probes) == ("c001", "c000", 0, ())
    assert (r.confidence, r.note) == ("high", None)


def test_fix_binary_search_and_confirmation() -> None:
    r = run_fix(fix_probe(11, 7))
    assert r.probes == seq((5, B), (7, G), (6, B), (6, B), (6, B))
    assert (r.first_good, r.last_crashing, r.steps) == ("c007", "c006", 5)
    assert r.steps <= math.ceil(math.log2(10)) + 2
    assert r.confidence == "high"


def test_fix_known_crashing_end_is_not_confirmed() -> None:
    r = run_fix(fix_probe(11, 1))
    assert r.probes == seq((5, G), (2, G), (1, G))
    assert (r.first_good, r.last_crashing, r.steps) == ("c001", "c000", 3)


def test_fix_skip_at_midpoint() -> None:
    r = run_fix(fix_probe(11, 7, skip={5}))
    assert r.probes == seq((5, S), (4, B), (7, G), (6, B), (6, B), (6, B))
    assert (r.first_good, r.last_crashing, r.skipped) == ("c007", "c006", ("c005",))
    assert r.confidence == "high"


def test_fix_all_skipped_interval_is_widened() -> None:
    r = run_fix(fix_probe(5, 2, skip={1, 2, 3}))
    assert r.probes == seq((2, S), (1, S), (3, S))
    assert (r.first_good, r.last_crashing, r.steps) == ("c004", "c000", 0)
    assert r.confidence == "low"
    assert r.note == "3 commits between last crashing and first good could not be built"


def test_fix_unrunnable_first_good_lowers_confidence() -> None:
    r = run_fix(fix_probe(11, 7, unrunnable={7}))
    assert r.probes == seq((5, B), (7, U), (6, B), (6, B), (6, B))
    assert (r.first_good, r.last_crashing) == ("c007", "c006")
    assert r.confidence == "low"
    assert r.note == "harness cannot start at c007: the crash may be hidden, not fixed"


def test_fix_flaky_confirmation_lowers_confidence() -> None:
    r = run_fix(fix_probe(11, 7, flaky={6}))
    assert r.probes == seq((5, B), (7, G), (6, B), (6, G))
    assert r.confidence == "low"
    assert r.note == "last crashing commit c006 did not reproduce on a re-test (flaky)"


# --- validation --------------------------------------------------------------------------


def _never(sha: str) -> ProbeResult:
    raise AssertionError(f"probed {sha}")


def test_empty_history_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Invalid history \[\]: must hold at least the crash"):
        find_introduction([], _never)


@pytest.mark.parametrize("history", [[], ["c000"]])
def test_fix_needs_two_commits(history: list[str]) -> None:
    with pytest.raises(ValueError, match="must hold at least the last crashing and the fixed"):
        find_fix(history, _never)


def test_duplicate_commit_is_named() -> None:
    with pytest.raises(ValueError, match=r"commit 'c001' appears twice \(at 1 and 3\)"):
        find_introduction(["c000", "c001", "c002", "c001"], _never)
    with pytest.raises(ValueError, match="'c000' appears twice"):
        find_fix(["c000", "c000"], _never)


def test_negative_confirm_runs_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid confirm_runs -1"):
        find_introduction(["c000"], _never, confirm_runs=-1)


@pytest.mark.parametrize(("verdict", "runs"), [(S, 1), (B, 0), (G, -1), (U, 0)])
def test_probe_result_runs_must_match_the_verdict(verdict: Verdict, runs: int) -> None:
    with pytest.raises(ValueError, match=f"Invalid runs {runs}"):
        ProbeResult(verdict, runs)


# --- properties --------------------------------------------------------------------------


@st.composite
def intro_cases(draw: st.DrawFn) -> tuple[int, int, frozenset[int]]:
    n = draw(st.integers(1, 300))
    first_bad = draw(st.integers(0, n - 1))
    skip = draw(st.frozensets(st.integers(1, n - 1), max_size=n) if n > 1 else st.just(frozenset()))
    return n, first_bad, skip


def assert_single_probes_then_confirmations(
    probes: tuple[tuple[str, Verdict], ...], confirmed: str | None, confirm_runs: int
) -> None:
    searched = [sha for sha, _ in probes]
    if confirmed is not None:
        assert searched[len(searched) - confirm_runs :] == [confirmed] * confirm_runs
        searched = searched[: len(searched) - confirm_runs]
    assert len(searched) == len(set(searched))


@given(intro_cases(), st.booleans())
def test_intro_properties(case: tuple[int, int, frozenset[int]], use_skips: bool) -> None:
    n, first_bad, skip = case
    skip = skip if use_skips else frozenset()
    r = run_intro(intro_probe(n, first_bad, skip=skip))
    history = shas(n)

    assert history[0] not in [sha for sha, _ in r.probes]
    assert_single_probes_then_confirmations(r.probes, r.last_good, 2)

    # Whatever was skipped, the answer brackets the truth with only skipped commits between.
    bad_at = history.index(r.first_bad)
    good_at = n if r.last_good is None else history.index(r.last_good)
    assert bad_at <= first_bad < good_at
    assert set(range(bad_at + 1, good_at)) <= skip
    assert r.skipped == tuple(sha for sha, v in r.probes if v is S)
    assert set(r.skipped) <= {history[i] for i in skip}

    if first_bad not in skip and first_bad + 1 not in skip:
        assert r.first_bad == history[first_bad]
        if first_bad + 1 < n:
            assert (r.last_good, r.confidence, r.note) == (history[first_bad + 1], "high", None)
        else:
            assert (r.last_good, r.confidence) == (None, "low")

    if not skip:
        if first_bad + 1 < n:
            d = first_bad + 1
            assert r.steps <= 2 * math.ceil(math.log2(d)) + 3
        elif n > 1:
            assert r.steps <= math.ceil(math.log2(n - 1)) + 1


@st.composite
def fix_cases(draw: st.DrawFn) -> tuple[int, int, frozenset[int]]:
    n = draw(st.integers(2, 300))
    first_good = draw(st.integers(1, n - 1))
    skip = draw(st.frozensets(st.integers(1, n - 2), max_size=n) if n > 2 else st.just(frozenset()))
    return n, first_good, skip


@given(fix_cases(), st.booleans())
def test_fix_properties(case: tuple[int, int, frozenset[int]], use_skips: bool) -> None:
    n, first_good, skip = case
    skip = skip if use_skips else frozenset()
    r = run_fix(fix_probe(n, first_good, skip=skip))
    history = shas(n)

    probed = [sha for sha, _ in r.probes]
    assert history[0] not in probed
    assert history[-1] not in probed
    confirmed = None if r.last_crashing == history[0] else r.last_crashing
    assert_single_probes_then_confirmations(r.probes, confirmed, 2)

    bad_at, good_at = history.index(r.last_crashing), history.index(r.first_good)
    assert bad_at < first_good <= good_at
    assert set(range(bad_at + 1, good_at)) <= skip

    if first_good not in skip and first_good - 1 not in skip:
        assert (r.last_crashing, r.first_good) == (history[first_good - 1], history[first_good])
        assert (r.confidence, r.note) == ("high", None)

    if not skip:
        assert r.steps <= math.ceil(math.log2(n - 1)) + 2
