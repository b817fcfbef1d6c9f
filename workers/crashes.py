"""Turning an engine's crash artifact and output into a stored, signed crash report.

The artifact file is ground truth; libFuzzer's report and the printed traceback are only a
description (a hostile harness can print anything, and so can mislabel its own crash).
Each testcase is uploaded as soon as it is seen, by content address, and a signature seen
again within the job is counted, not uploaded again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harnesses.identity import content_id, harness_id
from harnesses.libfuzzer import CrashDetected
from harnesses.pytraceback import Frame as StackFrame
from harnesses.pytraceback import parse_crash
from harnesses.signature import crash_signature, crash_title, relative_path
from harnesses.stackdump import parse_stack_dump
from workers.contract import CrashReport, Frame
from workers.safefiles import read_regular
from workers.spool import Spool

logger = logging.getLogger(__name__)

MAX_TESTCASE_BYTES = 16 * 1024 * 1024
_ARTIFACT_KINDS = {"crash": "exception", "timeout": "timeout", "oom": "oom", "leak": "oom"}


def artifact_kind(name: str) -> str | None:
    """The crash kind an artifact's file name prefix stands for, or None if it is not one."""
    prefix = name.split("-", 1)[0]
    return _ARTIFACT_KINDS.get(prefix)


@dataclass(frozen=True)
class _Described:
    kind: str
    exception_type: str
    message: str | None
    frames: tuple[StackFrame, ...]


def detected_for(artifact: Path, crashes: Sequence[CrashDetected]) -> CrashDetected | None:
    """The crash report libFuzzer printed for an artifact (the last one if none names it)."""
    for crash in reversed(crashes):
        if crash.artifact is not None and Path(crash.artifact).name == artifact.name:
            return crash
    return crashes[-1] if crashes else None


def describe(prefix_kind: str, detected: CrashDetected | None, output: str) -> _Described:
    """Kind, type, message and stack of a crash from its artifact's kind and what was printed.

    The artifact's prefix is ground truth for timeouts and OOMs; for a ``crash-`` artifact,
    libFuzzer's own report line says whether it was an exception, a signal or an exit.
    """
    report = detected.report if detected is not None and detected.report else output
    if prefix_kind in ("timeout", "oom"):
        dump = parse_stack_dump(report)
        return _Described(prefix_kind, "", None, dump.frames if dump is not None else ())
    kind = detected.kind.value if detected is not None else "exception"
    if kind == "signal":
        dump = parse_stack_dump(report)
        frames = dump.frames if dump is not None else ()
        signal = (detected.signal or "") if detected is not None else ""
        return _Described("signal", signal, None, frames)
    parsed = parse_crash(report)
    if kind == "exit" or parsed is None:
        code = detected.exit_code if detected is not None else None
        message = f"exit status {code}" if code is not None else None
        frames = parsed.frames if parsed is not None else ()
        return _Described("exit", "", message, frames)
    return _Described("exception", parsed.exception_type, parsed.message, parsed.frames)


@dataclass
class CrashCollector:
    """Crashes of one job: signed, deduplicated, uploaded the moment they are seen."""

    spool: Spool
    repo: str
    harness: str
    harness_path: str
    roots: Sequence[str]
    seen: dict[str, CrashReport] = field(default_factory=dict)

    def collect(
        self,
        artifact: Path,
        *,
        detected: CrashDetected | None,
        output: str,
        found_after_s: float,
    ) -> CrashReport | None:
        """Record one artifact; return the report if its signature is new in this job."""
        prefix_kind = artifact_kind(artifact.name)
        if prefix_kind is None:
            return None
        data = read_regular(artifact, MAX_TESTCASE_BYTES)
        if data is None:  # a link or a FIFO the harness left: never follow it
            logger.warning("ignoring artifact %s: not a regular file", artifact.name)
            return None
        crash = describe(prefix_kind, detected, output)
        stack = tuple(
            Frame(relative_path(f.path, roots=self.roots), f.function, f.line) for f in crash.frames
        )
        signature = crash_signature(
            crash.kind,
            crash.exception_type,
            [(f.path, f.function) for f in crash.frames],
            roots=self.roots,
            harness_path=self.harness_path,
        )
        if signature.sha1 in self.seen:
            previous = self.seen[signature.sha1]
            self.seen[signature.sha1] = replace(previous, count=previous.count + 1)
            return None
        key = f"crashes/{self.repo}/{harness_id(self.harness)}/{content_id(data)}"
        self.spool.put(key, data)
        report = CrashReport(
            signature=signature.sha1,
            canonical=signature.canonical,
            kind=crash.kind,
            exception_type=crash.exception_type or None,
            message=crash.message,
            title=crash_title(crash.kind, crash.exception_type, signature.frames),
            frames=signature.frames,
            stack=stack,
            testcase_key=key,
            found_after_s=round(found_after_s, 3),
        )
        self.seen[signature.sha1] = report
        logger.info("crash %s: %s (%s)", signature.sha1[:12], report.title, key)
        return report

    def reports(self) -> tuple[CrashReport, ...]:
        """Every distinct crash of the job, with how often each was hit."""
        return tuple(self.seen.values())
