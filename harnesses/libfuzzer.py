"""libFuzzer as atheris bundles it: flags in, progress and crashes out.

The parts live in ``libfuzzer_stats`` (status and final-stats lines) and
``libfuzzer_output`` (the incremental parser of a run's output, with the formats observed
for every way a run ends); this module builds the command line and is the public surface.
"""

from __future__ import annotations

from collections.abc import Sequence

from harnesses.errors import EngineArgsError
from harnesses.libfuzzer_output import (
    ArtifactWritten,
    CrashDetected,
    Event,
    OutputParser,
    RunSummary,
    Stats,
)
from harnesses.libfuzzer_stats import (
    FinalStats,
    StatsLine,
    apply_final_line,
    format_stats_line,
    parse_final_stats,
    parse_stats_line,
)

__all__ = [
    "EXIT_CRASH",
    "EXIT_INTERRUPTED",
    "EXIT_OOM",
    "EXIT_TIMEOUT",
    "ArtifactWritten",
    "CrashDetected",
    "Event",
    "FinalStats",
    "OutputParser",
    "RunSummary",
    "Stats",
    "StatsLine",
    "apply_final_line",
    "format_stats_line",
    "libfuzzer_args",
    "parse_final_stats",
    "parse_stats_line",
]

# Exit codes. The first two are passed explicitly (libfuzzer_args) so that the worker can
# trust them whatever the engine's defaults; OOM and interruption are fixed in libFuzzer.
EXIT_CRASH = 77
EXIT_TIMEOUT = 70
EXIT_OOM = 71
EXIT_INTERRUPTED = 72

_MAX_INT_FLAG = 2**31 - 1
_MAX_PATH_CHARS = 4096


def _positive(name: str, value: int | None, maximum: int = _MAX_INT_FLAG) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise EngineArgsError(f"Invalid {name} {value!r}: expected an integer in 1..{maximum}")
    return value


def _path(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_PATH_CHARS:
        raise EngineArgsError(f"Invalid {name} {value!r}: expected a non-empty path")
    if any(not c.isprintable() for c in value):
        # A newline would also break the "Test unit written to" line the parser reads back.
        raise EngineArgsError(f"Invalid {name} {value!r}: control characters in a path")
    if value.startswith("-"):
        raise EngineArgsError(f"Invalid {name} {value!r}: libFuzzer would read it as a flag")
    return value


def libfuzzer_args(
    *,
    corpus_dirs: Sequence[str] = (),
    runs: int | None = None,
    max_total_time: int | None = None,
    seed: int | None = None,
    timeout: int | None = None,
    rss_limit_mb: int | None = None,
    max_len: int | None = None,
    dict_path: str | None = None,
    artifact_prefix: str | None = None,
    print_final_stats: bool = True,
) -> list[str]:
    """libFuzzer flags then corpus directories, from validated plain values.

    ``runs`` and ``max_total_time`` (seconds) bound the run; at least one is required, an
    endless run is never what a job wants. ``seed`` None lets libFuzzer pick one (its 0).
    ``-close_fd_mask`` is never passed: atheris prints the crash's Python traceback on
    stdout and libFuzzer its report on stderr, so the worker keeps both and bounds what it
    reads instead.
    """
    if runs is None and max_total_time is None:
        raise EngineArgsError("Invalid run bounds: give runs, max_total_time or both")
    args = [f"-error_exitcode={EXIT_CRASH}", f"-timeout_exitcode={EXIT_TIMEOUT}"]
    for flag, value, maximum in (
        ("runs", runs, 2**62),
        ("max_total_time", max_total_time, _MAX_INT_FLAG),
        ("seed", seed, 2**32 - 1),
        ("timeout", timeout, _MAX_INT_FLAG),
        ("rss_limit_mb", rss_limit_mb, _MAX_INT_FLAG),
        ("max_len", max_len, _MAX_INT_FLAG),
    ):
        checked = _positive(flag, value, maximum)
        if checked is not None:
            args.append(f"-{flag}={checked}")
    if dict_path is not None:
        args.append(f"-dict={_path('dict_path', dict_path)}")
    if artifact_prefix is not None:
        args.append(f"-artifact_prefix={_path('artifact_prefix', artifact_prefix)}")
    if print_final_stats:
        args.append("-print_final_stats=1")
    if isinstance(corpus_dirs, str):
        raise EngineArgsError(f"Invalid corpus_dirs {corpus_dirs!r}: expected a list of paths")
    args.extend(_path("corpus dir", d) for d in corpus_dirs)
    return args
