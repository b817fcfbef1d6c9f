"""libFuzzer's status lines and final stats (as atheris 3.0.0 bundles it).

Formats, as atheris 3.0.0 prints them (captured under ``tests/data/engine_output/``)::

    #8	NEW    cov: 4 ft: 4 corp: 2/3b lim: 4 exec/s: 0 rss: 40Mb L: 2/2 MS: 1 CrossOver-
    #16	pulse  corp: 1/1b lim: 4 exec/s: 1 rss: 40Mb
    Done 5000 runs in 0 second(s)
    stat::number_of_executed_units: 5000

Public through ``harnesses.libfuzzer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_INT = r"\d{1,20}"
# Anchored on every field libFuzzer prints, in its order, so that ordinary text is not
# taken for progress. (A harness can still print an exact copy: stats are description.)
_STATS = re.compile(
    rf"#(?P<execs>{_INT})\t(?P<event>[A-Za-z]{{1,16}}) +"
    rf"(?:cov: (?P<cov>{_INT}) )?"
    rf"(?:ft: (?P<ft>{_INT}) )?"
    rf"(?:corp: (?P<units>{_INT})(?:/(?P<size>{_INT})(?P<scale>b|Kb|Mb))? )?"
    rf"(?:focus: {_INT} )?"
    rf"(?:lim: {_INT} )?"
    rf"(?:units: {_INT} )?"
    rf"exec/s: (?P<eps>{_INT}) rss: (?P<rss>{_INT})Mb"
    rf"(?: L: {_INT}/{_INT} MS: .*)?"
)
_SCALE = {"b": 0, "Kb": 10, "Mb": 20}
_DONE = re.compile(rf"Done (?P<runs>{_INT}) runs in (?P<seconds>{_INT}) second\(s\)")
_FINAL = re.compile(rf"stat::(?P<name>[a-z_]{{1,40}}): +(?P<value>{_INT})")
_FINAL_FIELDS = {
    "number_of_executed_units": "executed_units",
    "average_exec_per_sec": "average_exec_per_sec",
    "new_units_added": "new_units_added",
    "slowest_unit_time_sec": "slowest_unit_time_sec",
    "peak_rss_mb": "peak_rss_mb",
}


@dataclass(frozen=True)
class StatsLine:
    """One ``#N EVENT …`` status line; a field libFuzzer left out is None, not 0."""

    execs: int
    event: str  # INITED, NEW, REDUCE, pulse, DONE, RELOAD
    coverage: int | None
    features: int | None
    corpus_units: int | None
    corpus_bytes: int | None  # as printed: Kb and Mb sizes are rounded down
    exec_per_s: int
    rss_mb: int


@dataclass(frozen=True)
class FinalStats:
    """``Done N runs in S second(s)`` and the ``stat::`` lines of ``-print_final_stats=1``."""

    runs: int | None = None
    seconds: int | None = None
    executed_units: int | None = None
    average_exec_per_sec: int | None = None
    new_units_added: int | None = None
    slowest_unit_time_sec: int | None = None
    peak_rss_mb: int | None = None


def _opt_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def parse_stats_line(line: str) -> StatsLine | None:
    """The status line's values, or None if ``line`` is not exactly one."""
    match = _STATS.fullmatch(line.rstrip("\r\n"))
    if match is None:
        return None
    size = _opt_int(match.group("size"))
    if size is not None:
        size <<= _SCALE[match.group("scale")]
    return StatsLine(
        execs=int(match.group("execs")),
        event=match.group("event"),
        coverage=_opt_int(match.group("cov")),
        features=_opt_int(match.group("ft")),
        corpus_units=_opt_int(match.group("units")),
        corpus_bytes=size,
        exec_per_s=int(match.group("eps")),
        rss_mb=int(match.group("rss")),
    )


def format_stats_line(stats: StatsLine) -> str:
    """The status line libFuzzer would print for ``stats`` (the inverse of parsing)."""
    parts = [f"#{stats.execs}\t{stats.event}"]
    if stats.coverage is not None:
        parts.append(f"cov: {stats.coverage}")
    if stats.features is not None:
        parts.append(f"ft: {stats.features}")
    if stats.corpus_units is not None:
        corpus = f"corp: {stats.corpus_units}"
        size = stats.corpus_bytes
        if size is not None:
            # libFuzzer's own rounding: bytes below 16 KiB, KiB below 16 MiB, then MiB.
            if size < 1 << 14:
                corpus += f"/{size}b"
            elif size < 1 << 24:
                corpus += f"/{size >> 10}Kb"
            else:
                corpus += f"/{size >> 20}Mb"
        parts.append(corpus)
    parts.append(f"exec/s: {stats.exec_per_s} rss: {stats.rss_mb}Mb")
    return " ".join(parts)


def apply_final_line(stats: FinalStats, line: str) -> FinalStats | None:
    """``stats`` updated from a ``Done …`` or ``stat::…`` line, or None for any other line."""
    line = line.rstrip("\r\n")
    done = _DONE.fullmatch(line)
    if done is not None:
        return replace(stats, runs=int(done.group("runs")), seconds=int(done.group("seconds")))
    final = _FINAL.fullmatch(line)
    if final is not None and final.group("name") in _FINAL_FIELDS:
        return replace(stats, **{_FINAL_FIELDS[final.group("name")]: int(final.group("value"))})
    return None


def parse_final_stats(text: str) -> FinalStats:
    """The final stats found anywhere in ``text`` (later lines win)."""
    stats = FinalStats()
    for line in text.split("\n"):
        stats = apply_final_line(stats, line[:200]) or stats
    return stats
