"""An incremental parser of a libFuzzer/atheris run's merged stdout and stderr.

What atheris 3.0.0 prints for each way a run ends (see ``tests/data/engine_output/``):

- exception: `` === Uncaught Python exception: ===`` and a traceback on stdout, then
  ``==PID== ERROR: libFuzzer: fuzz target exited``; artifact ``crash-<sha1>``; exit 77.
  ``sys.exit(n)`` is reported the same way as an uncaught ``SystemExit: n``.
- timeout: `` === Timeout: Ns elapsed, timeout=Ms ===``, a faulthandler dump, ``ALARM:``,
  the artifact ``timeout-<sha1>``, then ``==PID== ERROR: libFuzzer: timeout after N seconds``;
  exit 70.
- oom: ``==PID== ERROR: libFuzzer: out-of-memory (used: …Mb; limit: …Mb)``; ``oom-<sha1>``;
  exit 71.
- signal: ``==PID== ERROR: libFuzzer: deadly signal`` without the signal's name; ``crash-``;
  exit 77. (With faulthandler enabled, faulthandler takes the signal first and the process
  dies with no artifact at all: do not enable it for fuzzing runs.)
- exit: ``os._exit(n)`` prints nothing and writes no artifact: only the exit code tells.
  A native ``exit()`` is ``fuzz target exited`` without a Python exception.

The text is from an untrusted harness. The parser never raises, keeps bounded state, and
only matches whole lines in libFuzzer's exact formats (optionally checking the pid and the
artifact prefix the worker chose), but a harness can print any of them: the worker treats
artifact files and exit codes as ground truth and what is parsed here as description.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, replace

from harnesses.libfuzzer_stats import FinalStats, StatsLine, apply_final_line, parse_stats_line
from harnesses.pytraceback import ATHERIS_EXCEPTION_MARKER, SHIM_EXCEPTION_MARKER, plain_text
from harnesses.signature import CrashKind
from harnesses.stackdump import ATHERIS_TIMEOUT_MARKER, FATAL_ERROR_PREFIX
from harnesses.stackdump import signal_for_fatal_error as _fatal_signal

MAX_LINE_CHARS = 4096
TAIL_LINES = 200
REPORT_HEAD_LINES = 100
REPORT_TAIL_LINES = 1000
MAX_CRASHES = 100
MAX_ARTIFACTS = 1000

_ERROR = re.compile(r"==(?P<pid>\d{1,10})== ERROR: libFuzzer: (?P<what>.{1,500})")
_INTERRUPTED = re.compile(r"==(?P<pid>\d{1,10})== libFuzzer: run interrupted; exiting")
_ARTIFACT = re.compile(r"artifact_prefix='(?P<prefix>.*)'; Test unit written to (?P<path>.+)")
_ARTIFACT_NAME = re.compile(r"(?P<kind>crash|timeout|oom|leak|slow-unit)-[0-9a-f]{40}")
_REPORT_STARTS = (
    SHIM_EXCEPTION_MARKER,
    ATHERIS_EXCEPTION_MARKER,
    ATHERIS_TIMEOUT_MARKER,
    FATAL_ERROR_PREFIX.strip(),
)
# libFuzzer's ERROR line → the crash kind (and a signal name when the line implies one).
_ERROR_KINDS = (
    ("deadly signal", CrashKind.SIGNAL, None),
    ("file size exceeded", CrashKind.SIGNAL, "SIGXFSZ"),
    ("timeout after", CrashKind.TIMEOUT, None),
    ("out-of-memory", CrashKind.OOM, None),
    ("fuzz target exited", CrashKind.EXCEPTION, None),
)
# The artifact prefix libFuzzer uses for each kind of crash.
_ARTIFACT_FOR = {CrashKind.TIMEOUT: "timeout", CrashKind.OOM: "oom"}


@dataclass(frozen=True)
class Stats:
    """A progress line."""

    stats: StatsLine


@dataclass(frozen=True)
class ArtifactWritten:
    """libFuzzer wrote an input file; ``kind`` is its name's prefix (``slow-unit`` is no crash)."""

    path: str
    kind: str  # crash, timeout, oom, leak, slow-unit


@dataclass(frozen=True)
class CrashDetected:
    """libFuzzer reported a crash; ``report`` is the bounded text to parse a traceback from."""

    kind: CrashKind
    artifact: str | None
    summary_line: str
    signal: str | None = None  # e.g. SIGSEGV, when something printed it
    exit_code: int | None = None  # for an exit, when printed (SystemExit's argument)
    exception_type: str | None = None  # atheris' first line, for a quick look
    report: str = ""


Event = Stats | ArtifactWritten | CrashDetected


@dataclass(frozen=True)
class RunSummary:
    """What a whole run printed: last progress, final stats, crashes and artifacts."""

    last_stats: StatsLine | None
    final_stats: FinalStats
    crashes: tuple[CrashDetected, ...]
    artifacts: tuple[ArtifactWritten, ...]
    interrupted: bool
    lines: int
    tail: str  # the last TAIL_LINES lines
    dropped_crashes: int = 0

    @property
    def execs(self) -> int | None:
        """The best-known number of executions: final stats, else the last status line."""
        for value in (self.final_stats.executed_units, self.final_stats.runs):
            if value is not None:
                return value
        return self.last_stats.execs if self.last_stats is not None else None


def _clean(line: str) -> str:
    """A line safe to store: no NUL (PostgreSQL text refuses it), no lone surrogates."""
    return line.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


@dataclass
class _Report:
    """The lines of the crash report being printed: the first and last ones, bounded."""

    start: str = ""
    head: list[str] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=REPORT_TAIL_LINES))
    omitted: int = 0

    def add(self, line: str) -> None:
        """Keep ``line`` if it is among the first or the last lines of the report."""
        if len(self.head) < REPORT_HEAD_LINES:
            self.head.append(line)
            return
        if len(self.tail) == self.tail.maxlen:
            self.omitted += 1
        self.tail.append(line)

    def text(self) -> str:
        """The kept lines, with a note where some were dropped."""
        middle = [f"[… {self.omitted} lines omitted by fuzzorch …]"] if self.omitted else []
        return "\n".join([*self.head, *middle, *self.tail])


class OutputParser:
    """Turns output lines into events; ``final()`` summarises the run.

    ``pid`` (libFuzzer's ``==PID==``, when the worker knows it) and ``artifact_prefix``
    (the ``-artifact_prefix`` it passed) make lines that do not match them plain text.
    """

    def __init__(self, *, pid: int | None = None, artifact_prefix: str | None = None) -> None:
        self._pid = pid
        self._prefix = artifact_prefix
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._report: _Report | None = None
        self._exception_line: str | None = None
        self._after_atheris_marker = False
        self._pending_crash: CrashDetected | None = None
        self._pending_artifact: ArtifactWritten | None = None
        self._crashes: list[CrashDetected] = []
        self._dropped = 0
        self._artifacts: list[ArtifactWritten] = []
        self._last_stats: StatsLine | None = None
        self._final = FinalStats()
        self._interrupted = False
        self._lines = 0

    def feed(self, line: str) -> list[Event]:
        """Parse one line (a trailing newline is fine; embedded ones split it)."""
        events: list[Event] = []
        for piece in line.removesuffix("\n").split("\n"):
            self._feed_one(_clean(piece[:MAX_LINE_CHARS].rstrip("\r")), events)
        return events

    def final(self) -> RunSummary:
        """The summary so far; a crash still waiting for its artifact is counted without."""
        crashes, dropped = list(self._crashes), self._dropped
        if self._pending_crash is not None:
            if len(crashes) < MAX_CRASHES:
                crashes.append(self._pending_crash)
            else:
                dropped += 1
        return RunSummary(
            last_stats=self._last_stats,
            final_stats=self._final,
            crashes=tuple(crashes),
            artifacts=tuple(self._artifacts),
            interrupted=self._interrupted,
            lines=self._lines,
            tail="\n".join(self._tail),
            dropped_crashes=dropped,
        )

    def _feed_one(self, line: str, events: list[Event]) -> None:
        self._lines += 1
        self._tail.append(line)
        self._track_report(line)
        stats = parse_stats_line(line) if line.startswith("#") else None
        if stats is not None:
            self._flush(events)
            self._last_stats = stats
            events.append(Stats(stats))
            return
        final = apply_final_line(self._final, line) if line[:5] in ("Done ", "stat:") else None
        if final is not None:
            self._flush(events)
            self._final = final
            return
        if line.startswith("=="):
            self._libfuzzer_line(line, events)
        elif line.startswith("artifact_prefix="):
            self._artifact_line(line, events)

    def _track_report(self, line: str) -> None:
        stripped = line.strip()
        if self._after_atheris_marker and stripped:
            self._exception_line = stripped
            self._after_atheris_marker = False
        start = next((s for s in _REPORT_STARTS if stripped.startswith(s)), None)
        # The shim prints the full chain before atheris prints its shorter report of the
        # same exception: keep the shim's report when atheris' marker follows it.
        keep = (
            start == ATHERIS_EXCEPTION_MARKER
            and self._report is not None
            and self._report.start == SHIM_EXCEPTION_MARKER
        )
        if start is not None and not keep:
            self._report = _Report(start)
        if start == ATHERIS_EXCEPTION_MARKER:
            self._after_atheris_marker = True
        if self._report is not None:
            self._report.add(line)

    def _pid_matches(self, pid: str) -> bool:
        return self._pid is None or pid == str(self._pid)

    def _libfuzzer_line(self, line: str, events: list[Event]) -> None:
        interrupted = _INTERRUPTED.fullmatch(line)
        if interrupted is not None and self._pid_matches(interrupted.group("pid")):
            self._interrupted = True
            return
        error = _ERROR.fullmatch(line)
        if error is None or not self._pid_matches(error.group("pid")):
            return
        if len(self._crashes) >= MAX_CRASHES:
            # Checked before building the report: a flood of ERROR lines stays cheap.
            self._dropped += 1
            return
        crash = self._crash_for(error.group("what"), plain_text(line, 500))
        if crash is None:
            return
        if crash.kind is CrashKind.EXIT and self._pending_crash is not None:
            # libFuzzer's SIGXFSZ handler reports "file size exceeded" and calls exit(),
            # which its exit callback reports again as "fuzz target exited": one crash.
            return
        self._flush(events)
        pending = self._pending_artifact
        if pending is not None and pending.kind == _ARTIFACT_FOR.get(crash.kind, "crash"):
            self._emit(replace(crash, artifact=pending.path), events)
        else:
            self._pending_crash = crash
        self._pending_artifact = None
        self._report, self._exception_line, self._after_atheris_marker = None, None, False

    def _crash_for(self, what: str, summary: str) -> CrashDetected | None:
        matched = next((entry for entry in _ERROR_KINDS if what.startswith(entry[0])), None)
        if matched is None:
            return None  # leak reports and libFuzzer's own errors are not crashes of a target
        _, kind, signal = matched
        report = self._report.text() if self._report is not None else "\n".join(self._tail)
        fatal = self._report is not None and self._report.start == FATAL_ERROR_PREFIX.strip()
        if kind is CrashKind.SIGNAL and signal is None and fatal and self._report is not None:
            # faulthandler names the signal that libFuzzer's "deadly signal" leaves out.
            signal = _fatal_signal(self._report.head[0].strip()[len(FATAL_ERROR_PREFIX) :])
        exception_type = exit_code = None
        if self._exception_line is not None:
            exception_type = plain_text(self._exception_line.partition(":")[0], 200)
        if kind is CrashKind.EXCEPTION and exception_type in (None, "SystemExit"):
            # No Python exception: native code called exit(). SystemExit: sys.exit(n).
            kind = CrashKind.EXIT
            argument = (self._exception_line or "").partition(": ")[2].strip()
            exit_code = int(argument) if argument.isdigit() and len(argument) < 10 else None
        return CrashDetected(kind, None, summary, signal, exit_code, exception_type, report)

    def _artifact_line(self, line: str, events: list[Event]) -> None:
        match = _ARTIFACT.fullmatch(line)
        if match is None:
            return
        path = match.group("path")
        if self._prefix is not None:
            if match.group("prefix") != self._prefix or not path.startswith(self._prefix):
                return
            name = path[len(self._prefix) :]
        else:
            name = path.rsplit("/", 1)[-1]
        kind = _ARTIFACT_NAME.fullmatch(name)
        if kind is None:
            return
        artifact = ArtifactWritten(path, kind.group("kind"))
        if len(self._artifacts) < MAX_ARTIFACTS:
            self._artifacts.append(artifact)
            events.append(artifact)
        crash = self._pending_crash
        if crash is not None and artifact.kind == _ARTIFACT_FOR.get(crash.kind, "crash"):
            self._pending_crash = None
            self._emit(replace(crash, artifact=path), events)
        elif crash is None and artifact.kind in ("crash", "timeout", "oom"):
            # A timeout's artifact is written before libFuzzer's ERROR line about it.
            self._pending_artifact = artifact

    def _flush(self, events: list[Event]) -> None:
        if self._pending_crash is not None:
            self._emit(self._pending_crash, events)
            self._pending_crash = None

    def _emit(self, crash: CrashDetected, events: list[Event]) -> None:
        if len(self._crashes) >= MAX_CRASHES:
            self._dropped += 1
            return
        self._crashes.append(crash)
        events.append(crash)
