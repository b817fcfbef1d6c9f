"""The job contract between the trusted side and a worker: ``JobSpec`` in, ``Outcome`` out.

Both travel as JSON (dramatiq messages, ``fuzzorch fuzz --json``), so both have explicit
round trips; ``from_json`` validates what it reads, since a worker's outcome crosses back
into the trusted side. A failure is an outcome code, never an exception across the boundary.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harnesses.model import HarnessKind, HarnessOptions
from workers.errors import WorkerError

SCHEMA = 1


class ContractError(WorkerError, ValueError):
    """A job spec or outcome document is malformed."""


class OutcomeCode(enum.StrEnum):
    """How a job ended (DESIGN.md, "Identities")."""

    OK = "ok"
    CRASHED = "crashed"
    STARTUP_FAILED = "startup_failed"
    BUILD_FAILED = "build_failed"
    TIMED_OUT = "timed_out"
    INFRA_ERROR = "infra_error"


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one fuzz job, frozen at planning time."""

    job_id: str
    repo: str
    source: str
    commit: str
    harness: str
    kind: HarnessKind
    path: str
    options: HarnessOptions = field(default_factory=HarnessOptions)
    install: tuple[str, ...] | None = None
    duration_s: float | None = None
    runs: int | None = None
    seed: int | None = None
    attempt: int = 1
    campaign_id: str | None = None
    max_corpus_units: int = 50_000

    def __post_init__(self) -> None:
        if (self.duration_s is None) == (self.runs is None):
            raise ContractError(
                f"job {self.job_id!r} needs exactly one of duration_s and runs, "
                f"got duration_s={self.duration_s!r}, runs={self.runs!r}"
            )
        if self.duration_s is not None and not self.duration_s > 0:
            raise ContractError(f"job {self.job_id!r}: duration_s={self.duration_s!r} must be > 0")
        if self.runs is not None and self.runs <= 0:
            raise ContractError(f"job {self.job_id!r}: runs={self.runs!r} must be > 0")

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object."""
        return {
            "schema": SCHEMA,
            "job_id": self.job_id,
            "repo": self.repo,
            "source": self.source,
            "commit": self.commit,
            "harness": self.harness,
            "kind": self.kind.value,
            "path": self.path,
            "options": self.options.to_json(),
            "install": list(self.install) if self.install is not None else None,
            "duration_s": self.duration_s,
            "runs": self.runs,
            "seed": self.seed,
            "attempt": self.attempt,
            "campaign_id": self.campaign_id,
            "max_corpus_units": self.max_corpus_units,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        """Parse and validate a spec document."""
        try:
            _check_schema(data)
            install = _optional(data, "install", list)
            if install is not None and not all(isinstance(c, str) for c in install):
                raise ContractError(f"install must be a list of strings, got {install!r}")
            options = _optional(data, "options", dict) or {}
            return cls(
                job_id=_str(data, "job_id"),
                repo=_str(data, "repo"),
                source=_str(data, "source"),
                commit=_str(data, "commit"),
                harness=_str(data, "harness"),
                kind=HarnessKind(data["kind"]),
                path=_str(data, "path"),
                options=HarnessOptions.from_json(options),
                install=tuple(install) if install is not None else None,
                duration_s=_optional(data, "duration_s", (int, float)),
                runs=_optional(data, "runs", int),
                seed=_optional(data, "seed", int),
                attempt=_optional(data, "attempt", int) or 1,
                campaign_id=_optional(data, "campaign_id", str),
                max_corpus_units=_optional(data, "max_corpus_units", int) or 50_000,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ContractError):
                raise
            raise ContractError(f"malformed job spec: {exc!r}") from None


@dataclass(frozen=True)
class Frame:
    """One stack frame of a crash: repository-relative when it is the repository's."""

    path: str
    function: str
    line: int | None

    def to_json(self) -> dict[str, Any]:
        """The frame as a JSON object."""
        return {"path": self.path, "function": self.function, "line": self.line}


@dataclass(frozen=True)
class CrashReport:
    """A crash as the worker saw it: what, where, and the stored testcase."""

    signature: str
    canonical: str
    kind: str
    exception_type: str | None
    message: str | None
    title: str
    frames: tuple[str, ...]
    stack: tuple[Frame, ...]
    testcase_key: str
    found_after_s: float
    count: int = 1

    def to_json(self) -> dict[str, Any]:
        """The crash as a JSON object."""
        return {
            "signature": self.signature,
            "canonical": self.canonical,
            "kind": self.kind,
            "exception_type": self.exception_type,
            "message": self.message,
            "title": self.title,
            "frames": list(self.frames),
            "stack": [f.to_json() for f in self.stack],
            "testcase": self.testcase_key,
            "found_after_s": self.found_after_s,
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrashReport:
        """Parse a crash document."""
        return cls(
            signature=_str(data, "signature"),
            canonical=_str(data, "canonical"),
            kind=_str(data, "kind"),
            exception_type=data.get("exception_type"),
            message=data.get("message"),
            title=_str(data, "title"),
            frames=tuple(str(f) for f in data.get("frames", ())),
            stack=tuple(
                Frame(str(f["path"]), str(f["function"]), f.get("line"))
                for f in data.get("stack", ())
            ),
            testcase_key=_str(data, "testcase"),
            found_after_s=float(data["found_after_s"]),
            count=int(data.get("count", 1)),
        )


@dataclass(frozen=True)
class Stats:
    """What a job's engine reported at its end."""

    execs: int = 0
    exec_per_s: float = 0.0
    coverage: int = 0
    features: int = 0
    corpus_size: int = 0
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The stats as a JSON object."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outcome:
    """How a job ended, with its statistics, crashes and what protected the host."""

    job_id: str
    attempt: int
    code: OutcomeCode
    stats: Stats = field(default_factory=Stats)
    crashes: tuple[CrashReport, ...] = ()
    new_corpus_units: int = 0
    protections: Mapping[str, Any] = field(default_factory=dict)
    log_key: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON object."""
        return {
            "schema": SCHEMA,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "code": self.code.value,
            "stats": self.stats.to_json(),
            "crashes": [c.to_json() for c in self.crashes],
            "new_corpus_units": self.new_corpus_units,
            "protections": dict(self.protections),
            "log_key": self.log_key,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        """Parse and validate an outcome document (it comes from a worker)."""
        try:
            _check_schema(data)
            stats = data.get("stats") or {}
            return cls(
                job_id=_str(data, "job_id"),
                attempt=int(data["attempt"]),
                code=OutcomeCode(data["code"]),
                stats=Stats(
                    execs=int(stats.get("execs", 0)),
                    exec_per_s=float(stats.get("exec_per_s", 0.0)),
                    coverage=int(stats.get("coverage", 0)),
                    features=int(stats.get("features", 0)),
                    corpus_size=int(stats.get("corpus_size", 0)),
                    wall_s=float(stats.get("wall_s", 0.0)),
                ),
                crashes=tuple(CrashReport.from_json(c) for c in data.get("crashes", ())),
                new_corpus_units=int(data.get("new_corpus_units", 0)),
                protections=dict(data.get("protections") or {}),
                log_key=data.get("log_key"),
                detail=data.get("detail"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"malformed outcome: {exc!r}") from None


def _check_schema(data: Mapping[str, Any]) -> None:
    if data.get("schema") != SCHEMA:
        raise ContractError(f"unsupported schema {data.get('schema')!r}; expected {SCHEMA}")


def _optional(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ContractError(f"{key} has the wrong type: {value!r}")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ContractError(f"{key} must be a string, got {value!r}")
    return value
