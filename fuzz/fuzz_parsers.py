#!/usr/bin/env python3
"""Fuzz fuzzorch's parsers of engine output with atheris.

    .venv/bin/python fuzz/fuzz_parsers.py -runs=20000 [corpus_dir]

Crash output is written by untrusted harnesses, so the traceback, stack-dump and libFuzzer
output parsers must never raise and must keep what they return bounded; the signature of
whatever they parse must be computable; flag building may only refuse with EngineArgsError.
Lines whose first byte is below ``len(FRAGMENTS)`` are replaced by a fragment of real
output followed by the rest of the line, so that mutations reach the parsers' structure.
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["harnesses"]):
    from harnesses.errors import EngineArgsError
    from harnesses.libfuzzer import OutputParser, libfuzzer_args
    from harnesses.libfuzzer_output import MAX_CRASHES, TAIL_LINES
    from harnesses.pytraceback import (
        HEAD_FRAMES,
        MAX_CHAIN_LINKS,
        MAX_MESSAGE_CHARS,
        TAIL_FRAMES,
        parse_crash,
    )
    from harnesses.signature import crash_signature, crash_title
    from harnesses.stackdump import parse_stack_dump

FRAGMENTS = [
    "Traceback (most recent call last):",
    "  + Exception Group Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
    '  File "/src/target/pkg/a.py", line 3, in f',
    '  File "/src/target/pkg/a.py", line 3',
    '  File "/src/target/pkg/a.py", line 3 in f',
    "    return data[5]",
    "           ~~~~^^^",
    "ValueError: boom",
    "  | ",
    "  +-+---------------- 1 ----------------",
    "    +---------------- 2 ----------------",
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
    "Exception ignored in: <function f at 0x1>",
    " === Uncaught Python exception: ===",
    "=== fuzzorch: uncaught exception ===",
    "==12== ERROR: libFuzzer: fuzz target exited",
    "==12== ERROR: libFuzzer: deadly signal",
    "==12== ERROR: libFuzzer: timeout after 2 seconds",
    "artifact_prefix='/a/'; Test unit written to /a/crash-71853c6197a6a7f222db0f1978c7cb232b87c5ee",
    "#8\tNEW    cov: 4 ft: 4 corp: 2/3Kb lim: 4 exec/s: 0 rss: 40Mb L: 2/2 MS: 1 CrossOver-",
    "Done 5000 runs in 0 second(s)",
    "stat::peak_rss_mb:              40",
    "Fatal Python error: Segmentation fault",
    " === Timeout: 2s elapsed, timeout=1s ===",
    "Current thread 0x00007f (most recent call first):",
]
MAX_FRAMES = HEAD_FRAMES + TAIL_FRAMES


def _text(data: bytes) -> str:
    lines = []
    for raw in data.split(b"\n"):
        rest = raw.decode("utf-8", "surrogateescape")
        if raw and raw[0] < len(FRAGMENTS):
            rest = FRAGMENTS[raw[0]] + rest[1:]
        lines.append(rest)
    return "\n".join(lines)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _parse_text(text: str) -> None:
    parsed = parse_crash(text)
    if parsed is not None:
        _check(len(parsed.frames) <= MAX_FRAMES, "too many frames")
        _check(len(parsed.message) <= MAX_MESSAGE_CHARS, "message too long")
        _check(len(parsed.chain) <= 2 * MAX_CHAIN_LINKS, "chain too long")
        signature = crash_signature(
            "exception",
            parsed.exception_type,
            parsed.frames,
            roots=["/src/target"],
            harness_path="fuzz/h.py",
        )
        _check(signature.canonical.count("|") == 4, f"forged field: {signature.canonical!r}")
        signature.canonical.encode("utf-8")
        crash_title("exception", parsed.exception_type, signature.frames)
    dump = parse_stack_dump(text)
    if dump is not None:
        _check(len(dump.frames) <= MAX_FRAMES, "too many dump frames")
        crash_signature("timeout", "", dump.frames, roots=["/src/target"], harness_path=None)


def _parse_lines(text: str) -> None:
    parser = OutputParser(artifact_prefix="/a/")
    for line in text.split("\n"):
        parser.feed(line)
    summary = parser.final()
    _check(len(summary.crashes) <= MAX_CRASHES, "too many crashes")
    _check(summary.tail.count("\n") < TAIL_LINES, "tail too long")
    for crash in summary.crashes:
        parse_crash(crash.report)
        crash_signature(crash.kind, crash.signal or "", [], roots=["/"], harness_path=None)


def _build_args(fdp: atheris.FuzzedDataProvider) -> None:
    with contextlib.suppress(EngineArgsError):
        libfuzzer_args(
            runs=fdp.ConsumeIntInRange(-2, 2**63) if fdp.ConsumeBool() else None,
            max_total_time=fdp.ConsumeIntInRange(-2, 2**40) if fdp.ConsumeBool() else None,
            seed=fdp.ConsumeIntInRange(-1, 2**33) if fdp.ConsumeBool() else None,
            timeout=fdp.ConsumeIntInRange(-1, 100) if fdp.ConsumeBool() else None,
            dict_path=fdp.ConsumeUnicodeNoSurrogates(8) if fdp.ConsumeBool() else None,
            artifact_prefix=fdp.ConsumeUnicode(8) if fdp.ConsumeBool() else None,
            corpus_dirs=[fdp.ConsumeUnicode(6) for _ in range(fdp.ConsumeIntInRange(0, 3))],
        )


def TestOneInput(data: bytes) -> None:
    """Feed one input to every parser; only documented errors may come out."""
    text = _text(data)
    _parse_text(text)
    _parse_lines(text)
    _build_args(atheris.FuzzedDataProvider(data[:64]))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
