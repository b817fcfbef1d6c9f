"""libFuzzer/atheris output and flags: status lines, final stats, crash events, arguments."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.errors import EngineArgsError
from harnesses.libfuzzer import (
    EXIT_CRASH,
    EXIT_TIMEOUT,
    ArtifactWritten,
    CrashDetected,
    Event,
    FinalStats,
    OutputParser,
    RunSummary,
    Stats,
    StatsLine,
    format_stats_line,
    libfuzzer_args,
    parse_final_stats,
    parse_stats_line,
)
from harnesses.libfuzzer_output import MAX_CRASHES, MAX_LINE_CHARS, TAIL_LINES
from harnesses.pytraceback import parse_crash
from harnesses.signature import CrashKind
from harnesses.stackdump import parse_stack_dump

DATA = Path(__file__).resolve().parents[2] / "data" / "engine_output"
SHA = "71853c6197a6a7f222db0f1978c7cb232b87c5ee"


def _run(name: str, parser: OutputParser | None = None) -> tuple[list[Event], RunSummary]:
    parser = parser or OutputParser()
    events: list[Event] = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines(keepends=True):
        events.extend(parser.feed(line))
    return events, parser.final()


def _crashes(events: list[Event]) -> list[CrashDetected]:
    return [e for e in events if isinstance(e, CrashDetected)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#2\tINITED exec/s: 0 rss: 40Mb", StatsLine(2, "INITED", None, None, None, None, 0, 40)),
        (
            "#8\tNEW    cov: 4 ft: 4 corp: 2/3b lim: 4 exec/s: 0 rss: 40Mb L: 2/2 MS: 1 CrossOver-",
            StatsLine(8, "NEW", 4, 4, 2, 3, 0, 40),
        ),
        (
            "#16\tpulse  corp: 1/1b lim: 4 exec/s: 1 rss: 40Mb",
            StatsLine(16, "pulse", None, None, 1, 1, 1, 40),
        ),
        (
            "#506\tREDUCE cov: 32 ft: 61 corp: 21/99b lim: 8 exec/s: 0 rss: 42Mb L: 7/8 MS: 3 "
            'CMP-CrossOver-CrossOver- DE: "\\000\\000"-',
            StatsLine(506, "REDUCE", 32, 61, 21, 99, 0, 42),
        ),
        (
            "#877228\tDONE   cov: 33 ft: 98 corp: 48/530b lim: 64 exec/s: 67479 rss: 42Mb",
            StatsLine(877228, "DONE", 33, 98, 48, 530, 67479, 42),
        ),
        (
            "#1024\tpulse  cov: 12 ft: 30 corp: 5/48Kb exec/s: 512 rss: 36Mb",
            StatsLine(1024, "pulse", 12, 30, 5, 48 * 1024, 512, 36),
        ),
        ("#9\tNEW    corp: 3 exec/s: 0 rss: 1Mb", StatsLine(9, "NEW", None, None, 3, None, 0, 1)),
    ],
)
def test_parse_stats_line(line: str, expected: StatsLine) -> None:
    assert parse_stats_line(line) == expected
    assert parse_stats_line(line + "\n") == expected


@pytest.mark.parametrize(
    "line",
    [
        "#1024 pulse  cov: 12 ft: 30 corp: 5/48b exec/s: 512 rss: 36Mb",  # space, not tab
        "echo #1024\tpulse  cov: 12 exec/s: 512 rss: 36Mb",
        "#1024\tpulse  cov: 12 ft: 30 corp: 5/48b exec/s: 512 rss: 36Mb and more",
        "#1024\tpulse  cov: 12 ft: 30 corp: 5/48b",
        "#1024\tpulse  ft: 30 cov: 12 exec/s: 512 rss: 36Mb",
        "#-5\tpulse  exec/s: 512 rss: 36Mb",
        "#" + "9" * 30 + "\tpulse  exec/s: 1 rss: 1Mb",
        "INFO: Seed: 1",
        "",
    ],
)
def test_lines_that_only_look_like_status_are_not(line: str) -> None:
    assert parse_stats_line(line) is None


def _representable_size(units: int) -> st.SearchStrategy[int | None]:
    # libFuzzer prints bytes below 16 KiB, whole KiB below 16 MiB, whole MiB above.
    return (
        st.none()
        | st.integers(0, (1 << 14) - 1)
        | st.integers(16, (1 << 14) - 1).map(lambda k: k << 10)
        | st.integers(16, 1 << 20).map(lambda m: m << 20)
    )


@st.composite
def stats_lines(draw: st.DrawFn) -> StatsLine:
    """StatsLine values libFuzzer can print (no corpus size without a corpus count)."""
    count = st.integers(0, 2**63)
    units = draw(st.none() | count)
    size = None if units is None else draw(_representable_size(units))
    return StatsLine(
        execs=draw(count),
        event=draw(st.sampled_from(["INITED", "NEW", "REDUCE", "pulse", "DONE", "RELOAD"])),
        coverage=draw(st.none() | count),
        features=draw(st.none() | count),
        corpus_units=units,
        corpus_bytes=size,
        exec_per_s=draw(count),
        rss_mb=draw(count),
    )


@given(stats_lines())
def test_stats_lines_round_trip(stats: StatsLine) -> None:
    assert parse_stats_line(format_stats_line(stats)) == stats


def test_formatting_matches_what_libfuzzer_printed() -> None:
    line = "#8\tNEW cov: 4 ft: 4 corp: 2/3b exec/s: 0 rss: 40Mb"
    parsed = parse_stats_line(line)
    assert parsed is not None
    assert format_stats_line(parsed) == line


def test_final_stats_of_a_clean_run() -> None:
    text = (DATA / "atheris_runs_clean.txt").read_text(encoding="utf-8")
    assert parse_final_stats(text) == FinalStats(
        runs=5000,
        seconds=0,
        executed_units=5000,
        average_exec_per_sec=0,
        new_units_added=0,
        slowest_unit_time_sec=0,
        peak_rss_mb=40,
    )


def test_final_stats_without_done_line_after_a_crash() -> None:
    stats = parse_final_stats((DATA / "atheris_oom.txt").read_text(encoding="utf-8"))
    assert (stats.runs, stats.executed_units, stats.peak_rss_mb) == (None, 8, 487)


EXC = "0938bd8906efd33eb8846038ee810c910d410281"
HYP = "a95e00af41581ba07bdc5f24d383cf09180310c5"
# file: (kind, artifact under /src/target/, (signal, exit code, atheris' exception type))
CAPTURED_CRASHES = {
    "atheris_exception.txt": ("exception", f"a_exc/crash-{EXC}", (None, None, "IndexError")),
    "atheris_chained.txt": ("exception", f"a_chain/crash-{SHA}", (None, None, "ParseError")),
    "atheris_recursion.txt": ("exception", f"a_rec/crash-{SHA}", (None, None, "RecursionError")),
    "atheris_exception_group.txt": (
        "exception",
        f"a_group/crash-{SHA}",
        (None, None, "ExceptionGroup"),
    ),
    "atheris_hypothesis.txt": ("exception", f"a_hyp/crash-{HYP}", (None, None, "IndexError")),
    "atheris_exception_ignored.txt": (
        "exception",
        f"a_ignored/crash-{EXC}",
        (None, None, "IndexError"),
    ),
    "atheris_timeout.txt": ("timeout", f"a_timeout/timeout-{SHA}", (None, None, None)),
    "atheris_oom.txt": ("oom", f"a_oom/oom-{SHA}", (None, None, None)),
    "atheris_segv.txt": ("signal", f"a_segv/crash-{SHA}", (None, None, None)),
    "atheris_sys_exit.txt": ("exit", f"a_sysexit/crash-{SHA}", (None, 2, "SystemExit")),
}


@pytest.mark.parametrize("name", sorted(CAPTURED_CRASHES))
def test_each_captured_crash_is_detected_once_with_its_artifact(name: str) -> None:
    kind, artifact, details = CAPTURED_CRASHES[name]
    events, summary = _run(name)
    [crash] = _crashes(events)
    assert crash.kind == CrashKind(kind)
    assert crash.artifact == f"/src/target/{artifact}"
    assert (crash.signal, crash.exit_code, crash.exception_type) == details
    assert crash.summary_line.startswith("==")
    assert "ERROR: libFuzzer:" in crash.summary_line
    assert summary.crashes == (crash,)
    written = [e for e in events if isinstance(e, ArtifactWritten)]
    assert [(a.path, a.kind) for a in written] == [(crash.artifact, artifact.split("/")[1][:-41])]


def test_the_crash_report_carries_the_traceback_of_the_crash() -> None:
    events, _ = _run("atheris_exception_ignored.txt")
    [crash] = _crashes(events)
    parsed = parse_crash(crash.report)
    assert parsed is not None
    assert (parsed.exception_type, parsed.frames[-1].function) == ("IndexError", "unescape")


def test_the_timeout_report_carries_the_stack_dump() -> None:
    events, _ = _run("atheris_timeout.txt")
    [crash] = _crashes(events)
    dump = parse_stack_dump(crash.report)
    assert dump is not None
    assert dump.frames[-1].function == "spin"


@pytest.mark.parametrize(
    ("name", "execs", "interrupted", "artifacts"),
    [
        ("atheris_runs_clean.txt", 5000, False, []),
        ("atheris_max_total_time.txt", 877228, False, []),
        ("atheris_interrupted.txt", 108420, True, []),
        ("atheris_slow_unit.txt", 20, False, ["slow-unit"]),
        # os._exit(3): libFuzzer prints nothing; only the exit code tells the worker.
        ("atheris_os_exit.txt", 2, False, []),
        # faulthandler takes SIGSEGV before libFuzzer: no report, no artifact.
        ("atheris_segv_faulthandler.txt", 2, False, []),
    ],
)
def test_runs_without_a_crash(
    name: str, execs: int, interrupted: bool, artifacts: list[str]
) -> None:
    events, summary = _run(name)
    assert _crashes(events) == []
    assert summary.crashes == ()
    assert summary.execs == execs
    assert summary.interrupted is interrupted
    assert [a.kind for a in summary.artifacts] == artifacts


def test_progress_events_and_last_stats() -> None:
    events, summary = _run("atheris_max_total_time.txt")
    stats = [e.stats for e in events if isinstance(e, Stats)]
    assert len(stats) == 19
    assert stats[0] == StatsLine(4, "INITED", 29, 37, 3, 16, 0, 42)
    assert summary.last_stats == stats[-1]
    assert summary.final_stats.runs == 877228
    assert summary.final_stats.seconds == 13


def test_a_pid_that_does_not_match_makes_error_lines_plain_text() -> None:
    events, _ = _run("atheris_exception.txt", OutputParser(pid=1))
    assert _crashes(events) == []
    events, _ = _run("atheris_exception.txt", OutputParser(pid=29342))
    assert len(_crashes(events)) == 1


def test_artifacts_outside_the_prefix_are_ignored() -> None:
    prefix = "/src/target/a_exc/"
    events, _ = _run("atheris_exception.txt", OutputParser(artifact_prefix=prefix))
    assert [c.artifact for c in _crashes(events)] == [
        f"{prefix}crash-0938bd8906efd33eb8846038ee810c910d410281"
    ]
    events, summary = _run("atheris_exception.txt", OutputParser(artifact_prefix="/scratch/a/"))
    assert summary.artifacts == ()
    [crash] = _crashes(events) or list(summary.crashes)
    assert crash.artifact is None


def test_text_that_merely_resembles_libfuzzer_is_not_an_event() -> None:
    parser = OutputParser()
    lines = [
        "ERROR: libFuzzer: deadly signal",
        "== ERROR: libFuzzer: deadly signal",
        "  ==12== ERROR: libFuzzer: deadly signal",
        "==12== ERROR: libFuzzer: leak detected",
        "Test unit written to /tmp/crash-" + SHA,
        "artifact_prefix='/a/'; Test unit written to /a/crash-not-a-sha1",
        "artifact_prefix='/a/'; Test unit written to /a/minimized-from-" + SHA,
        "#1024 pulse  cov: 12 ft: 30 corp: 5/48b exec/s: 512 rss: 36Mb",
        "Done many runs in 3 second(s)",
        "stat::made_up_stat: 4",
    ]
    events = [event for line in lines for event in parser.feed(line)]
    assert events == []
    summary = parser.final()
    assert (summary.crashes, summary.artifacts, summary.final_stats) == ((), (), FinalStats())


def test_a_crash_whose_artifact_never_comes_is_still_summarized() -> None:
    parser = OutputParser()
    assert parser.feed("==7== ERROR: libFuzzer: deadly signal") == []
    [crash] = parser.final().crashes
    assert (crash.kind, crash.artifact) == (CrashKind.SIGNAL, None)
    [event] = parser.feed("#5\tpulse  exec/s: 1 rss: 1Mb")[:1]
    assert event == crash


def test_native_exit_without_python_exception_is_an_exit() -> None:
    parser = OutputParser()
    parser.feed("==7== ERROR: libFuzzer: fuzz target exited")
    events = parser.feed(f"artifact_prefix='./'; Test unit written to ./crash-{SHA}")
    [crash] = _crashes(events)
    assert (crash.kind, crash.exception_type, crash.artifact) == (
        CrashKind.EXIT,
        None,
        f"./crash-{SHA}",
    )


def test_faulthandler_names_the_deadly_signal() -> None:
    parser = OutputParser()
    for line in [
        "Fatal Python error: Bus error",
        "",
        "Current thread 0x1 (most recent call first):",
    ]:
        parser.feed(line)
    parser.feed("==7== ERROR: libFuzzer: deadly signal")
    [crash] = parser.final().crashes
    assert crash.signal == "SIGBUS"


def test_state_stays_bounded_under_a_flood() -> None:
    parser = OutputParser()
    long_line = "x" * (MAX_LINE_CHARS * 3)
    for n in range(3 * MAX_CRASHES):
        parser.feed(f" === Uncaught Python exception: ===\nE: {n}\n{long_line}")
        parser.feed(f"=={n}== ERROR: libFuzzer: fuzz target exited")
        parser.feed(f"artifact_prefix='/a/'; Test unit written to /a/crash-{SHA}")
    for _ in range(5000):
        parser.feed(long_line)
    summary = parser.final()
    assert len(summary.crashes) == MAX_CRASHES
    assert summary.dropped_crashes == 2 * MAX_CRASHES
    assert len(summary.tail) <= TAIL_LINES * (MAX_LINE_CHARS + 1)
    assert all(len(c.report) < 2_000 * (MAX_LINE_CHARS + 1) for c in summary.crashes)


def test_a_flood_of_error_lines_is_cheap() -> None:
    parser = OutputParser()
    for _ in range(TAIL_LINES):
        parser.feed("y" * MAX_LINE_CHARS)
    started = time.monotonic()
    for _ in range(50_000):
        parser.feed("==1== ERROR: libFuzzer: deadly signal")
    assert time.monotonic() - started < 10
    summary = parser.final()
    assert len(summary.crashes) == MAX_CRASHES
    assert summary.dropped_crashes == 50_000 - MAX_CRASHES


@settings(max_examples=200)
@given(st.lists(st.text() | st.sampled_from(["\n", "\r\n", "\x00", "==1== ERROR: libFuzzer: x"])))
def test_arbitrary_lines_never_raise(lines: list[str]) -> None:
    parser = OutputParser(pid=1, artifact_prefix="/a/")
    for line in lines:
        for event in parser.feed(line):
            assert isinstance(event, Stats | ArtifactWritten | CrashDetected)
    summary = parser.final()
    assert "\x00" not in summary.tail
    summary.tail.encode("utf-8")


def test_libfuzzer_args_from_plain_values() -> None:
    args = libfuzzer_args(
        runs=1000,
        max_total_time=60,
        seed=7,
        timeout=25,
        rss_limit_mb=2048,
        max_len=4096,
        dict_path="/w/fuzz/parse.dict",
        artifact_prefix="/scratch/artifacts/",
        corpus_dirs=["/scratch/new", "/cache/corpus"],
    )
    assert args == [
        f"-error_exitcode={EXIT_CRASH}",
        f"-timeout_exitcode={EXIT_TIMEOUT}",
        "-runs=1000",
        "-max_total_time=60",
        "-seed=7",
        "-timeout=25",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-dict=/w/fuzz/parse.dict",
        "-artifact_prefix=/scratch/artifacts/",
        "-print_final_stats=1",
        "/scratch/new",
        "/cache/corpus",
    ]
    assert "-close_fd_mask" not in " ".join(args)
    assert libfuzzer_args(max_total_time=5, print_final_stats=False) == [
        "-error_exitcode=77",
        "-timeout_exitcode=70",
        "-max_total_time=5",
    ]


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({}, "runs, max_total_time"),
        ({"runs": 0}, "runs 0"),
        ({"runs": -1}, "runs -1"),
        ({"runs": True}, "runs True"),
        ({"runs": 1.5}, "runs 1.5"),
        ({"runs": "10"}, "runs '10'"),
        ({"max_total_time": 2**40}, f"max_total_time {2**40}"),
        ({"runs": 1, "seed": 0}, "seed 0"),
        ({"runs": 1, "seed": 2**32}, f"seed {2**32}"),
        ({"runs": 1, "timeout": 0}, "timeout 0"),
        ({"runs": 1, "rss_limit_mb": -5}, "rss_limit_mb -5"),
        ({"runs": 1, "max_len": 0}, "max_len 0"),
        ({"runs": 1, "dict_path": ""}, "dict_path ''"),
        ({"runs": 1, "artifact_prefix": "/a\n/"}, "artifact_prefix '/a\\\\n/'"),
        ({"runs": 1, "corpus_dirs": ["-runs=5"]}, "corpus dir '-runs=5'"),
        ({"runs": 1, "corpus_dirs": ["/ok", "/nul\x00"]}, "corpus dir '/nul\\\\x00'"),
        ({"runs": 1, "corpus_dirs": "/corpus"}, "corpus_dirs '/corpus'"),
    ],
)
def test_bad_values_are_refused_naming_them(kwargs: dict[str, object], shown: str) -> None:
    with pytest.raises(EngineArgsError, match=shown.replace("(", r"\(")):
        libfuzzer_args(**kwargs)  # type: ignore[arg-type]


def test_the_real_engine_accepts_the_flags(tmp_path: Path) -> None:
    harness = tmp_path / "h.py"
    harness.write_text(
        textwrap.dedent(
            """
            import sys
            import atheris

            def TestOneInput(data):
                if data[:2] == b"\\\\x":
                    raise ValueError(data)

            atheris.Setup(sys.argv, TestOneInput)
            atheris.Fuzz()
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "seed").write_bytes(b"\\x")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    prefix = f"{artifacts}/"
    args = libfuzzer_args(
        runs=100, seed=1, timeout=5, artifact_prefix=prefix, corpus_dirs=[str(tmp_path / "corpus")]
    )
    done = subprocess.run(
        [sys.executable, str(harness), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert "unrecognized flag" not in output.lower()
    assert done.returncode == EXIT_CRASH
    parser = OutputParser(artifact_prefix=prefix)
    for line in output.splitlines():
        parser.feed(line)
    [crash] = parser.final().crashes
    assert crash.kind is CrashKind.EXCEPTION
    assert crash.artifact is not None
    assert Path(crash.artifact).read_bytes() == b"\\x"
