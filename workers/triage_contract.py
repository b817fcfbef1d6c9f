"""The triage contract: ``TriageSpec`` in, ``TriageOutcome`` out, both JSON over the queues.

A triage job works on one crash group of one repository; each commit it tests is built
with that commit's own install configuration. ``analyze`` reproduces the
group's testcase at the commit it was found on (reliability), minimizes it, bisects the
commit that introduced it and blames the crashing line. ``verify`` re-runs it at a newer
commit of a branch and, when it no longer reproduces there, bisects the fix. The outcome
crosses back into the trusted side, so ``from_json`` checks every field it reads.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harnesses.model import HarnessKind, HarnessOptions
from workers.contract import ContractError

SCHEMA = 1
_SHA = re.compile(r"[0-9a-f]{40}")
MAX_NOTE_CHARS = 2000
MAX_EXAMPLE_CHARS = 64 * 1024


class TriageTask(enum.StrEnum):
    """What a triage job does."""

    ANALYZE = "analyze"
    VERIFY = "verify"


class TriageCode(enum.StrEnum):
    """How a triage job ended."""

    OK = "ok"
    NOT_REPRODUCED = "not_reproduced"  # analyze: the testcase never crashed the same way
    BUILD_FAILED = "build_failed"  # the environment at the job's commit could not be built
    STARTUP_FAILED = "startup_failed"  # the harness could not start at the job's commit
    TIMED_OUT = "timed_out"  # the job's time budget ran out
    INFRA_ERROR = "infra_error"

    @property
    def passing(self) -> bool:
        """A failure that says nothing about the crash: worth trying again later."""
        return self in (TriageCode.TIMED_OUT, TriageCode.INFRA_ERROR)


# How sure "does not reproduce" must be before a crash counts as fixed: the chance that a
# crash reproducing with probability r hides in k runs is (1 - r) ** k.
FIXED_MISS_CHANCE = 1e-3
MIN_FIXED_RUNS = 3
MAX_FIXED_RUNS = 30


def runs_to_call_fixed(reliability: float | None) -> int:
    """Runs without the crash that make "fixed" believable for this reliability."""
    if reliability is None or reliability >= 1.0:
        return MIN_FIXED_RUNS
    if reliability <= 0.0:
        return MAX_FIXED_RUNS
    needed = math.ceil(math.log(FIXED_MISS_CHANCE) / math.log1p(-reliability))
    return max(MIN_FIXED_RUNS, min(MAX_FIXED_RUNS, needed))


@dataclass(frozen=True)
class TriageSpec:
    """One triage job, frozen when it is planned."""

    job_id: str
    task: TriageTask
    repo: str
    source: str
    group_id: str
    signature: str
    harness: str
    kind: HarnessKind
    path: str
    commit: str  # analyze: the crash's commit; verify: the commit to re-check
    testcase_key: str
    options: HarnessOptions = field(default_factory=HarnessOptions)
    runs: int = 10  # reproductions for reliability (analyze) or for "fixed" (verify, at most)
    confirm_runs: int = 2
    history_limit: int = 1024
    known_bad: tuple[str, ...] = ()  # verify: commits the group is known to crash at
    introduced: str | None = None  # verify: the group's introducing commit, when known
    reliability: float | None = None  # verify: what analyze measured
    harness_commit: str | None = None  # where to take the harness file from (default: commit)
    known_fix: Mapping[str, Any] | None = None  # verify: the fix already found on the branch
    budget_s: float = 1800.0  # the whole job's time; what is left undone is reported
    attempt: int = 1
    campaign_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("commit", "introduced", "harness_commit"):
            value = getattr(self, name)
            if value is None:
                continue
            if not _SHA.fullmatch(value):
                raise ContractError(f"triage job {self.job_id!r}: {name}={value!r} is not a sha")
        for sha in self.known_bad:
            if not _SHA.fullmatch(sha):
                raise ContractError(f"triage job {self.job_id!r}: known_bad {sha!r} is not a sha")
        if not 1 <= self.runs <= 100:
            raise ContractError(f"triage job {self.job_id!r}: runs={self.runs!r} not in 1..100")
        if not 0 <= self.confirm_runs <= 10:
            raise ContractError(
                f"triage job {self.job_id!r}: confirm_runs={self.confirm_runs!r} not in 0..10"
            )
        if not 10 <= self.budget_s <= 24 * 3600:
            raise ContractError(
                f"triage job {self.job_id!r}: budget_s={self.budget_s!r} not in 10..86400"
            )
        if not 1 <= self.history_limit <= 100_000:
            raise ContractError(
                f"triage job {self.job_id!r}: history_limit={self.history_limit!r} out of range"
            )

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object."""
        return {
            "schema": SCHEMA,
            "job_id": self.job_id,
            "task": self.task.value,
            "repo": self.repo,
            "source": self.source,
            "group_id": self.group_id,
            "signature": self.signature,
            "harness": self.harness,
            "kind": self.kind.value,
            "path": self.path,
            "commit": self.commit,
            "testcase_key": self.testcase_key,
            "options": self.options.to_json(),
            "runs": self.runs,
            "confirm_runs": self.confirm_runs,
            "history_limit": self.history_limit,
            "known_bad": list(self.known_bad),
            "introduced": self.introduced,
            "reliability": self.reliability,
            "harness_commit": self.harness_commit,
            "known_fix": dict(self.known_fix) if self.known_fix is not None else None,
            "budget_s": self.budget_s,
            "attempt": self.attempt,
            "campaign_id": self.campaign_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriageSpec:
        """Parse and validate a spec document."""
        try:
            _schema(data)
            return cls(
                job_id=_text(data, "job_id"),
                task=TriageTask(data["task"]),
                repo=_text(data, "repo"),
                source=_text(data, "source"),
                group_id=_text(data, "group_id"),
                signature=_text(data, "signature"),
                harness=_text(data, "harness"),
                kind=HarnessKind(data["kind"]),
                path=_text(data, "path"),
                commit=_text(data, "commit"),
                testcase_key=_text(data, "testcase_key"),
                options=HarnessOptions.from_json(data.get("options") or {}),
                runs=_int(data, "runs", 10),
                confirm_runs=_int(data, "confirm_runs", 2),
                history_limit=_int(data, "history_limit", 1024),
                known_bad=tuple(str(s) for s in data.get("known_bad") or ()),
                introduced=data.get("introduced"),
                reliability=_number_or_none(data, "reliability"),
                harness_commit=data.get("harness_commit"),
                known_fix=_range(data.get("known_fix"), "known_fix"),
                budget_s=_number_or_none(data, "budget_s") or 1800.0,
                attempt=_int(data, "attempt", 1),
                campaign_id=data.get("campaign_id"),
            )
        except ContractError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"malformed triage spec: {exc!r}") from None


@dataclass(frozen=True)
class TriageOutcome:
    """What a triage job found. Sections that do not apply are None."""

    job_id: str
    attempt: int
    group_id: str
    task: TriageTask
    code: TriageCode
    commit: str
    runs: int = 0  # reproductions at ``commit``
    reproduced: int = 0  # of those, how many crashed with the group's signature
    signature_seen: str | None = None  # another signature the testcase crashed with, if any
    minimized_key: str | None = None
    falsifying_example: str | None = None
    introduced: Mapping[str, Any] | None = None
    fixed: Mapping[str, Any] | None = None
    blame: Mapping[str, Any] | None = None
    detail: str | None = None
    log_key: str | None = None

    @property
    def reliability(self) -> float | None:
        """The fraction of reproductions that crashed the group's way."""
        return round(self.reproduced / self.runs, 3) if self.runs else None

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object."""
        return {
            "schema": SCHEMA,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "group_id": self.group_id,
            "task": self.task.value,
            "code": self.code.value,
            "commit": self.commit,
            "runs": self.runs,
            "reproduced": self.reproduced,
            "signature_seen": self.signature_seen,
            "minimized_key": self.minimized_key,
            "falsifying_example": self.falsifying_example,
            "introduced": dict(self.introduced) if self.introduced is not None else None,
            "fixed": dict(self.fixed) if self.fixed is not None else None,
            "blame": dict(self.blame) if self.blame is not None else None,
            "detail": self.detail,
            "log_key": self.log_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriageOutcome:
        """Parse and validate an outcome document (it comes from a worker)."""
        try:
            _schema(data)
            runs, reproduced = _int(data, "runs", 0), _int(data, "reproduced", 0)
            if not 0 <= reproduced <= runs <= 10_000:
                raise ContractError(f"reproduced={reproduced} of runs={runs} is impossible")
            commit = _text(data, "commit")
            if not _SHA.fullmatch(commit):
                raise ContractError(f"commit {commit!r} is not a sha")
            return cls(
                job_id=_text(data, "job_id"),
                attempt=_int(data, "attempt", None),
                group_id=_text(data, "group_id"),
                task=TriageTask(data["task"]),
                code=TriageCode(data["code"]),
                commit=commit,
                runs=runs,
                reproduced=reproduced,
                signature_seen=_bounded_or_none(data, "signature_seen", 40),
                minimized_key=_bounded_or_none(data, "minimized_key", 1024),
                falsifying_example=_bounded_or_none(data, "falsifying_example", MAX_EXAMPLE_CHARS),
                introduced=_range(data.get("introduced"), "introduced"),
                fixed=_range(data.get("fixed"), "fixed"),
                blame=_blame(data.get("blame")),
                detail=_bounded_or_none(data, "detail", MAX_NOTE_CHARS),
                log_key=_bounded_or_none(data, "log_key", 1024),
            )
        except ContractError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"malformed triage outcome: {exc!r}") from None


def _range(value: Any, name: str) -> dict[str, Any] | None:
    """An ``introduced`` or ``fixed`` section: shas checked, texts bounded."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContractError(f"{name} must be an object, got {value!r}")
    result: dict[str, Any] = {}
    for key in ("commit", "last_good", "last_crashing", "boundary"):
        sha = value.get(key)
        if sha is not None and not (isinstance(sha, str) and _SHA.fullmatch(sha)):
            raise ContractError(f"{name}.{key} {sha!r} is not a sha")
        if key in value:
            result[key] = sha
    if value.get("commit") is None:
        raise ContractError(f"{name}.commit is required")
    confidence = value.get("confidence")
    if confidence not in ("high", "low"):
        raise ContractError(f"{name}.confidence {confidence!r} is not high or low")
    result["confidence"] = confidence
    steps = value.get("steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 100_000:
        raise ContractError(f"{name}.steps {steps!r} is not a count")
    result["steps"] = steps
    note = value.get("note")
    result["note"] = None if note is None else str(note)[:MAX_NOTE_CHARS]
    skipped = value.get("skipped") or []
    if not (isinstance(skipped, list) and all(isinstance(s, str) for s in skipped)):
        raise ContractError(f"{name}.skipped must be a list of shas")
    result["skipped"] = [s for s in skipped if _SHA.fullmatch(s)][:1000]
    return result


def _blame(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContractError(f"blame must be an object, got {value!r}")
    commit = value.get("commit")
    if not (isinstance(commit, str) and _SHA.fullmatch(commit)):
        raise ContractError(f"blame.commit {commit!r} is not a sha")
    line = value.get("line")
    if isinstance(line, bool) or not isinstance(line, int) or line < 1:
        raise ContractError(f"blame.line {line!r} is not a line number")
    return {
        "commit": commit,
        "path": str(value.get("path", ""))[:1024],
        "line": line,
        "author": str(value.get("author", ""))[:256],
        "date": str(value.get("date", ""))[:64],
        "summary": str(value.get("summary", ""))[:512],
    }


def _schema(data: Mapping[str, Any]) -> None:
    if data.get("schema") != SCHEMA:
        raise ContractError(f"unsupported schema {data.get('schema')!r}; expected {SCHEMA}")


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ContractError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _bounded_or_none(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(f"{key} must be a string, got {value!r}")
    return value[:limit]


def _number_or_none(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _int(data: Mapping[str, Any], key: str, default: int | None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ContractError(f"{key} must be a whole number 0..1000000, got {value!r}")
    return value
