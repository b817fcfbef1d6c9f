"""Pure regression bisection: which commits to test to find where a crash appeared or went.

No git and no subprocess here. The caller hands over first-parent history as a list of shas
and a ``probe`` that runs the crash testcase at one commit and says what happened. The search
assumes the crash is monotone along that history (it appears once and stays, or goes once and
stays away); the confirmation re-tests and ``confidence`` say where that assumption looked
shaky, and ``note`` says why in words a report can show.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Fix",
    "Introduction",
    "Probe",
    "ProbeResult",
    "Verdict",
    "find_fix",
    "find_introduction",
]


class Verdict(enum.StrEnum):
    """What one probe saw at one commit."""

    BAD = "bad"  # the testcase reproduces the crash (same signature)
    GOOD = "good"  # it ran and did not reproduce
    SKIP = "skip"  # the commit cannot be tested: its environment failed to build
    # The harness (possibly transplanted from a newer commit) cannot even start there.
    UNRUNNABLE = "unrunnable"


@dataclass(frozen=True)
class ProbeResult:
    """One probe's verdict and how many testcase reproductions it used."""

    verdict: Verdict
    runs: int

    def __post_init__(self) -> None:
        if self.verdict is Verdict.SKIP and self.runs != 0:
            raise ValueError(f"Invalid runs {self.runs!r}: a skipped commit runs nothing")
        if self.verdict is not Verdict.SKIP and self.runs < 1:
            raise ValueError(
                f"Invalid runs {self.runs!r}: a {self.verdict} probe runs at least once"
            )


Probe = Callable[[str], ProbeResult]


@dataclass(frozen=True)
class Introduction:
    """Where a crash was introduced, and how sure the search is."""

    first_bad: str
    last_good: str | None
    steps: int  # reproduction runs used, confirmations included
    probes: tuple[tuple[str, Verdict], ...]  # every probe call in order
    skipped: tuple[str, ...]
    boundary: str | None  # the UNRUNNABLE commit that ended the search, if any
    confidence: str  # "high" | "low"
    note: str | None


@dataclass(frozen=True)
class Fix:
    """Where a crash was fixed, and how sure the search is."""

    first_good: str
    last_crashing: str
    steps: int
    probes: tuple[tuple[str, Verdict], ...]
    skipped: tuple[str, ...]
    confidence: str
    note: str | None


_RETEST_WORDS = {
    Verdict.BAD: "reproduced",
    Verdict.GOOD: "did not reproduce",
    Verdict.SKIP: "could not be built",
    Verdict.UNRUNNABLE: "could not start the harness",
}


class _Session:
    """Calls the probe and keeps the record: every call, the runs, what each index gave."""

    def __init__(self, history: Sequence[str], probe: Probe) -> None:
        self.history = history
        self._probe = probe
        self.seen: dict[int, Verdict] = {}
        self.probes: list[tuple[str, Verdict]] = []
        self.skipped: list[str] = []
        self.steps = 0

    def _call(self, sha: str) -> Verdict:
        result = self._probe(sha)
        self.probes.append((sha, result.verdict))
        self.steps += result.runs
        return result.verdict

    def test(self, index: int) -> Verdict:
        """Probe ``history[index]`` for the search (never called twice for one index)."""
        verdict = self._call(self.history[index])
        self.seen[index] = verdict
        if verdict is Verdict.SKIP:
            self.skipped.append(self.history[index])
        return verdict

    def narrow(self, bad: int, good: int) -> tuple[int, int]:
        """Shrink the open interval (bad, good) until it holds no untested commit."""
        while (index := self._pick(bad, good)) is not None:
            verdict = self.test(index)
            if verdict is Verdict.BAD:
                bad = index
            elif verdict is not Verdict.SKIP:
                # UNRUNNABLE bounds the search like GOOD; callers decide what it is worth.
                good = index
        return bad, good

    def _pick(self, bad: int, good: int) -> int | None:
        # The midpoint, or when it was skipped the untested commit nearest to it: lower
        # index first on a tie, so a run is reproducible.
        mid = (bad + good) // 2
        for offset in range(good - bad):
            for index in (mid - offset, mid + offset):
                if bad < index < good and index not in self.seen:
                    return index
        return None

    def confirm(self, index: int, expected: Verdict, times: int, role: str) -> str | None:
        """Re-test ``history[index]``; on the first surprise stop and return a note."""
        sha = self.history[index]
        for _ in range(times):
            verdict = self._call(sha)
            if verdict is not expected:
                return f"{role} {sha[:12]} {_RETEST_WORDS[verdict]} on a re-test (flaky)"
        return None


def find_introduction(
    history: Sequence[str], probe: Probe, *, confirm_runs: int = 2
) -> Introduction:
    """Find the commit that introduced a crash; ``history`` is first-parent, newest first."""
    _check(history, 1, "must hold at least the crash commit", confirm_runs)
    session = _Session(history, probe)
    last = len(history) - 1
    # `last + 1` stands for "older than anything fetched": no non-bad commit found yet.
    bad, good = 0, last + 1
    distance = 1
    # Gallop: a crash is usually recent, so reach back 1, 2, 4, ... rather than halving the
    # whole history; that keeps the cost logarithmic in the distance, not the history.
    while last > 0:
        index = min(distance, last)
        verdict = session.test(index)
        if verdict is Verdict.BAD:
            bad = index
        elif verdict is not Verdict.SKIP:
            good = index
            break
        if index == last:
            break
        distance *= 2
    bad, good = session.narrow(bad, good)

    first_bad = history[bad]
    gap = good - bad - 1  # commits left between the ends: every one of them was skipped
    notes: list[str] = []
    last_good = boundary = None
    if good > last:
        notes.append(f"reproduces at the oldest commit tested ({first_bad[:12]})")
        if gap:
            notes.append(f"{_commits(gap)} older than it could not be built")
    elif session.seen[good] is Verdict.UNRUNNABLE:
        boundary = history[good]
        notes.append(f"harness cannot start before {first_bad[:12]}")
        if gap:
            notes.append(f"{_commits(gap)} between the boundary and first bad could not be built")
    else:
        last_good = history[good]
        if gap:
            notes.append(f"{_commits(gap)} between last good and first bad could not be built")
        flake = session.confirm(good, Verdict.GOOD, confirm_runs, "last good commit")
        if flake:
            notes.append(flake)
    return Introduction(
        first_bad=first_bad,
        last_good=last_good,
        steps=session.steps,
        probes=tuple(session.probes),
        skipped=tuple(session.skipped),
        boundary=boundary,
        confidence="low" if notes else "high",
        note="; ".join(notes) or None,
    )


def find_fix(history: Sequence[str], probe: Probe, *, confirm_runs: int = 2) -> Fix:
    """Find the commit that fixed a crash; ``history`` is first-parent, oldest first."""
    _check(history, 2, "must hold at least the last crashing and the fixed commit", confirm_runs)
    session = _Session(history, probe)
    bad, good = session.narrow(0, len(history) - 1)

    gap = good - bad - 1
    notes: list[str] = []
    if gap:
        notes.append(f"{_commits(gap)} between last crashing and first good could not be built")
    if session.seen.get(good) is Verdict.UNRUNNABLE:
        notes.append(
            f"harness cannot start at {history[good][:12]}: the crash may be hidden, not fixed"
        )
    if bad > 0:  # history[0] is known to crash; only a probed verdict is worth re-testing
        flake = session.confirm(bad, Verdict.BAD, confirm_runs, "last crashing commit")
        if flake:
            notes.append(flake)
    return Fix(
        first_good=history[good],
        last_crashing=history[bad],
        steps=session.steps,
        probes=tuple(session.probes),
        skipped=tuple(session.skipped),
        confidence="low" if notes else "high",
        note="; ".join(notes) or None,
    )


def _check(history: Sequence[str], minimum: int, need: str, confirm_runs: int) -> None:
    if len(history) < minimum:
        raise ValueError(f"Invalid history {list(history)!r}: {need}")
    first_at: dict[str, int] = {}
    for index, sha in enumerate(history):
        if sha in first_at:
            raise ValueError(
                f"Invalid history: commit {sha!r} appears twice (at {first_at[sha]} and {index})"
            )
        first_at[sha] = index
    if confirm_runs < 0:
        raise ValueError(f"Invalid confirm_runs {confirm_runs!r}: must be at least 0")


def _commits(count: int) -> str:
    return f"{count} commit" if count == 1 else f"{count} commits"
