"""Executing one triage job: reproduce, minimize, bisect and blame, or verify a fix.

Like a fuzz job, a triage job reads a frozen spec, touches only the object store and the
worker's caches, and returns an outcome; failures are outcome codes. Which commits to test
is decided by the pure search in ``workers.bisection``; this module only answers its
question "does the testcase crash the group's way at this commit?".
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harnesses.identity import content_id, harness_id
from harnesses.model import HarnessKind
from harnesses.shim_output import parse_shrink_output
from workers.bisection import Fix, Introduction, ProbeResult, Verdict, find_fix, find_introduction
from workers.contract import Frame
from workers.crashes import MAX_TESTCASE_BYTES
from workers.engine import import_roots
from workers.envcache import BuildFailure
from workers.errors import WorkerError
from workers.fuzzjob import WorkerCaches
from workers.reproduce import Attempt, Reproducer, RunState, Target, Unrunnable
from workers.safefiles import read_regular
from workers.triage_contract import (
    TriageCode,
    TriageOutcome,
    TriageSpec,
    TriageTask,
    runs_to_call_fixed,
)

logger = logging.getLogger(__name__)

MAX_LOG_BYTES = 1024 * 1024
MAX_MINIMIZE_STEPS = 16
MAX_MINIMIZE_MISSES = 3
MINIMIZE_RESERVE_S = 300.0  # of a job's budget, kept for the bisection
# A probe of a flaky crash runs until it reproduces, at most this often: the chance that a
# crash reproducing with probability r stays hidden is (1 - r) ** runs.
MAX_PROBE_RUNS = 5
MISS_CHANCE = 0.05


class _OutOfTime(Exception):
    """The job's time budget is spent."""


@dataclass
class _Job:
    spec: TriageSpec
    caches: WorkerCaches
    repro: Reproducer
    testcase: Path
    deadline: float
    clock: Callable[[], float]
    transplanted: set[str] = field(default_factory=set)

    def check_time(self) -> None:
        """Stop the job's search when its budget is spent (checked between runs)."""
        if self.clock() > self.deadline:
            raise _OutOfTime(f"the triage job's budget of {self.spec.budget_s:g} s ran out")

    def probe_runs(self, reliability: float | None) -> int:
        """How many runs tell "does not reproduce" apart from bad luck."""
        if reliability is None or reliability >= 0.95:
            return 1
        if reliability <= 0:
            return MAX_PROBE_RUNS
        return max(
            1, min(MAX_PROBE_RUNS, math.ceil(math.log(MISS_CHANCE) / math.log1p(-reliability)))
        )

    def probe(self, reliability: float | None) -> Callable[[str], ProbeResult]:
        runs = self.probe_runs(reliability)

        def probe(commit: str) -> ProbeResult:
            self.check_time()
            with self.repro.at(commit) as target:
                if isinstance(target, BuildFailure):
                    return ProbeResult(Verdict.SKIP, 0)
                if isinstance(target, Unrunnable):
                    return ProbeResult(Verdict.UNRUNNABLE, 1)
                if target.transplanted:
                    self.transplanted.add(commit)
                used, started = 0, False
                for _ in range(runs):
                    attempt = self.repro.run(target, self.testcase)
                    used += 1
                    if attempt.matches(self.spec.signature):
                        return ProbeResult(Verdict.BAD, used)
                    started = started or attempt.state is not RunState.NO_START
                return ProbeResult(Verdict.GOOD if started else Verdict.UNRUNNABLE, used)

        return probe


def run_triage(
    spec: TriageSpec,
    caches: WorkerCaches,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TriageOutcome:
    """Run a triage job to its end (or its budget's) and describe what it found."""
    run_dir = caches.root / "triage" / f"{spec.job_id}-{spec.attempt}"
    shutil.rmtree(run_dir, ignore_errors=True)
    log_key = f"logs/{spec.campaign_id or 'triage'}/{spec.job_id}-{spec.attempt}.txt"
    repro: Reproducer | None = None
    try:
        repro = Reproducer(spec, caches, run_dir, stop=stop)
        data = caches.store.get(spec.testcase_key, max_bytes=MAX_TESTCASE_BYTES)
        job = _Job(
            spec, caches, repro, repro.add_input("testcase", data), clock() + spec.budget_s, clock
        )
        outcome = _analyze(job) if spec.task is TriageTask.ANALYZE else _verify(job)
        return _with(outcome, log_key=log_key)
    except _OutOfTime as exc:
        return _outcome(spec, TriageCode.TIMED_OUT, detail=str(exc), log_key=log_key)
    except WorkerError as exc:
        logger.warning("triage job %s: infrastructure failure: %s", spec.job_id, exc)
        return _outcome(spec, TriageCode.INFRA_ERROR, detail=str(exc)[:2000])
    finally:
        if repro is not None and repro.log:
            try:
                caches.spool().put(log_key, "\n".join(repro.log).encode()[-MAX_LOG_BYTES:])
            except WorkerError as exc:
                logger.warning("triage job %s: log not stored: %s", spec.job_id, exc)
        shutil.rmtree(run_dir, ignore_errors=True)


def _analyze(job: _Job) -> TriageOutcome:
    spec, repro = job.spec, job.repro
    with repro.at(spec.commit) as target:
        if not isinstance(target, Target):
            return _cannot_run(spec, target)
        attempts = []
        for _ in range(spec.runs):
            job.check_time()
            attempts.append(repro.run(target, job.testcase))
        matching = [a for a in attempts if a.matches(spec.signature)]
        if not matching:
            return _not_reproduced(spec, attempts)
        blame = _blame(job, target, matching[0])
        minimized, example = _minimize(job, target)
    reliability = len(matching) / len(attempts)
    history = job.caches.workspaces.git.first_parent_history(
        repro.mirror(), spec.commit, limit=spec.history_limit
    )
    introduced: dict[str, Any] | None = None
    detail = None
    try:
        found = find_introduction(history, job.probe(reliability), confirm_runs=spec.confirm_runs)
        introduced = _introduction_json(job, found)
    except _OutOfTime as exc:
        detail = f"no regression range: {exc}"
    return _outcome(
        spec,
        TriageCode.OK,
        runs=len(attempts),
        reproduced=len(matching),
        minimized_key=minimized,
        falsifying_example=example,
        introduced=introduced,
        blame=blame,
        detail=detail,
    )


def _cannot_run(spec: TriageSpec, why: BuildFailure | Unrunnable) -> TriageOutcome:
    """The job's own commit cannot be tested: its build failed, or its harness cannot start."""
    if isinstance(why, BuildFailure):
        return _outcome(spec, TriageCode.BUILD_FAILED, detail=why.reason)
    return _outcome(spec, TriageCode.STARTUP_FAILED, detail=why.reason)


def _not_reproduced(spec: TriageSpec, attempts: list[Attempt]) -> TriageOutcome:
    if all(a.state is RunState.NO_START for a in attempts):
        tail = attempts[-1].output[-2000:] if attempts else ""
        return _outcome(spec, TriageCode.STARTUP_FAILED, runs=len(attempts), detail=tail)
    other = next((a.signature for a in attempts if a.state is RunState.CRASHED), None)
    return _outcome(
        spec,
        TriageCode.NOT_REPRODUCED,
        runs=len(attempts),
        signature_seen=other,
        detail=(
            f"the testcase crashed with another signature ({other})"
            if other
            else f"the testcase ran {len(attempts)} times without crashing"
        ),
    )


def _verify(job: _Job) -> TriageOutcome:
    """Re-run at the commit; "fixed" only after enough runs for the crash's reliability."""
    spec, repro = job.spec, job.repro
    with repro.at(spec.commit) as target:
        if not isinstance(target, Target):
            return _cannot_run(spec, target)
        attempts: list[Attempt] = []
        for _ in range(runs_to_call_fixed(spec.reliability)):
            job.check_time()
            attempts.append(repro.run(target, job.testcase))
            if attempts[-1].matches(spec.signature):
                return _outcome(spec, TriageCode.OK, runs=len(attempts), reproduced=1)
    if all(a.state is RunState.NO_START for a in attempts):
        detail = attempts[-1].output[-2000:]
        return _outcome(spec, TriageCode.STARTUP_FAILED, runs=len(attempts), detail=detail)
    return _outcome(spec, TriageCode.OK, runs=len(attempts), reproduced=0, fixed=_find_fix(job))


def _find_fix(job: _Job) -> dict[str, Any] | None:
    """Bisect forward on the branch's first-parent line: last crashing -> first fixed.

    None when the commit under test is itself known to crash (an earlier campaign saw it
    crash there): missing it now is bad luck, not a fix.
    """
    spec, git = job.spec, job.caches.workspaces.git
    mirror = job.repro.mirror()
    known = spec.known_fix
    if known is not None and git.is_ancestor(mirror, str(known["commit"]), spec.commit):
        return {**known, "steps": 0}  # fixed before, on this branch's history: no new search
    chain = git.first_parent_history(mirror, spec.commit, limit=spec.history_limit)
    known_bad = set(spec.known_bad)
    start = next((i for i, sha in enumerate(chain) if sha in known_bad), None)
    probe = job.probe(spec.reliability)
    steps = 0
    if start is None:
        anchors = [s for s in (spec.introduced, *spec.known_bad) if s is not None]
        anchor = next((a for a in anchors if git.is_ancestor(mirror, a, spec.commit)), None)
        if anchor is None:
            note = "no crashing commit is known on this branch"
            return _fix_json(spec.commit, None, confidence="low", steps=0, note=note)
        start = _entry_index(chain, lambda sha: git.is_ancestor(mirror, anchor, sha))
        entry = probe(chain[start])
        steps = entry.runs
        if entry.verdict is not Verdict.BAD:
            note = (
                f"the crash does not reproduce where its commit entered this branch "
                f"({chain[start][:12]}): fixed at or before it"
            )
            return _fix_json(chain[start], None, confidence="low", steps=steps, note=note)
    if start == 0:
        return None
    segment = list(reversed(chain[: start + 1]))
    fix: Fix = find_fix(segment, probe, confirm_runs=spec.confirm_runs)
    return _fix_json(
        fix.first_good, fix.last_crashing, confidence=fix.confidence, steps=steps + fix.steps,
        note=fix.note, skipped=list(fix.skipped),
    )  # fmt: skip


def _entry_index(chain: list[str], contains: Callable[[str], bool]) -> int:
    """The oldest index of ``chain`` (newest first) whose history holds the anchor."""
    lo, hi = 0, len(chain) - 1  # contains(chain[0]) holds; find the largest such index
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if contains(chain[mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fix_json(
    commit: str,
    last_crashing: str | None,
    *,
    confidence: str,
    steps: int,
    note: str | None,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "commit": commit,
        "last_crashing": last_crashing,
        "confidence": confidence,
        "steps": steps,
        "note": note,
        "skipped": skipped or [],
    }


def _introduction_json(job: _Job, found: Introduction) -> dict[str, Any]:
    note = found.note
    if found.boundary is not None and found.boundary in job.transplanted:
        note = f"harness absent before {found.first_bad[:12]}; it cannot start when transplanted"
    return {
        "commit": found.first_bad,
        "last_good": found.last_good,
        "boundary": found.boundary,
        "confidence": found.confidence,
        "steps": found.steps,
        "note": note,
        "skipped": list(found.skipped),
    }


def _blame(job: _Job, target: Target, attempt: Attempt) -> dict[str, Any] | None:
    """Who last changed the crashing line: the innermost frame in the repository's files."""
    frame = _top_repository_frame(job.spec.path, target.worktree, attempt.stack)
    if frame is None:
        return None
    path, line = frame
    git = job.caches.workspaces.git
    try:
        blamed = git.blame_line(job.repro.mirror(), job.spec.commit, path, line)
    except (WorkerError, ValueError) as exc:
        logger.info("triage job %s: no blame for %s:%d: %s", job.spec.job_id, path, line, exc)
        return None
    return {
        "commit": blamed.commit,
        "path": path,
        "line": line,
        "author": blamed.author,
        "date": blamed.date,
        "summary": blamed.summary,
    }


def _top_repository_frame(
    harness_path: str, worktree: Path, stack: tuple[Frame, ...]
) -> tuple[str, int] | None:
    roots = import_roots(worktree)
    for frame in reversed(stack):
        if frame.line is None or frame.path.startswith("/"):
            continue
        for root in roots:
            candidate = root / frame.path
            if candidate.is_file() and not candidate.is_symlink():
                path = candidate.relative_to(worktree).as_posix()
                if path != harness_path:
                    return path, frame.line
                break
    return None


def _minimize(job: _Job, target: Target) -> tuple[str | None, str | None]:
    """Store the smallest testcase found with the same signature; returns its key and, for
    a Hypothesis test, the falsifying example as Hypothesis prints it."""
    spec, repro = job.spec, job.repro
    if spec.kind is HarnessKind.HYPOTHESIS:
        out = repro.run_dir / "shrunk" / "choices"
        attempt, output = repro.shrink(target, job.testcase, out)
        shrunk = read_regular(out, MAX_TESTCASE_BYTES)  # the harness could leave a link
        if not attempt.matches(spec.signature) or shrunk is None:
            return None, None
        example = parse_shrink_output(output).falsifying_example
        choices = repro.add_input("choices", shrunk)
        if not repro.replay_choices(target, choices).matches(spec.signature):
            return None, example
        return _store_minimized(job, shrunk), example
    current, misses = job.testcase, 0
    for step in range(MAX_MINIMIZE_STEPS):
        if job.clock() > job.deadline - MINIMIZE_RESERVE_S:
            break  # keep time for the bisection
        out = repro.run_dir / "minimized" / "candidate"
        if not repro.minimize_step(target, current, out, seed=step + 1):
            break
        smaller = read_regular(out, current.stat().st_size - 1)
        if smaller is None:
            break
        candidate = repro.add_input(f"min-{step}", smaller)
        if repro.run(target, candidate).matches(spec.signature):
            current = candidate
            continue
        misses += 1  # a smaller input that crashes another way: not this bug's reproducer
        if misses >= MAX_MINIMIZE_MISSES:
            break
    # Already minimal (libFuzzer found nothing smaller that crashes the same way): the
    # testcase is its own minimized form.
    return _store_minimized(job, current.read_bytes()), None


def _store_minimized(job: _Job, data: bytes) -> str:
    key = f"minimized/{job.spec.repo}/{harness_id(job.spec.harness)}/{content_id(data)}"
    job.caches.spool().put(key, data)
    return key


def _outcome(spec: TriageSpec, code: TriageCode, **fields: Any) -> TriageOutcome:
    return TriageOutcome(
        job_id=spec.job_id,
        attempt=spec.attempt,
        group_id=spec.group_id,
        task=spec.task,
        code=code,
        commit=spec.commit,
        **fields,
    )


def _with(outcome: TriageOutcome, *, log_key: str) -> TriageOutcome:
    return dataclasses.replace(outcome, log_key=log_key)
