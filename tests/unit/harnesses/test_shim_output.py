"""The Hypothesis shim's triage output: the last falsifying example, verdicts, hostile text."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses import shim_output
from harnesses.pytraceback import SHIM_EXCEPTION_MARKER, parse_crash
from harnesses.shim_output import (
    DID_NOT_REPRODUCE_MARKER,
    END_FALSIFYING_EXAMPLE_MARKER,
    FALSIFYING_EXAMPLE_MARKER,
    MAX_EXAMPLE_CHARS,
    TRUNCATED_MARKER,
    ShrinkOutput,
    format_falsifying_example,
    parse_shrink_output,
)
from harnesses.shims import _fuzzorch_shim_hypothesis as shim

EXAMPLE = "Failing test case: test_parse(\n    s='\\\\',\n)"

# What `--shrink` printed on stderr for tests/integration/test_shim_modes.py's target.
REAL_OUTPUT = f"""\
{FALSIFYING_EXAMPLE_MARKER}
{EXAMPLE}
{END_FALSIFYING_EXAMPLE_MARKER}

{SHIM_EXCEPTION_MARKER}
Traceback (most recent call last):
  File "/run/_fuzzorch_shim_hypothesis.py", line 206, in _run_once
    test()
  File "/src/target/tests/test_parse.py", line 5, in test_parse
    def test_parse(s):
                   ^^^
  File "/venv/lib/python3.11/site-packages/hypothesis/core.py", line 2334, in wrapped_test
    raise the_error_hypothesis_found
  File "/src/target/tests/test_parse.py", line 6, in test_parse
    parse(s)
  File "/src/target/pkg/parse.py", line 6, in parse
    out.append(s[i + 1])
               ~^^^^^^^
IndexError: string index out of range
{EXAMPLE}
"""

MARKERS = [
    FALSIFYING_EXAMPLE_MARKER,
    END_FALSIFYING_EXAMPLE_MARKER,
    DID_NOT_REPRODUCE_MARKER,
    SHIM_EXCEPTION_MARKER,
]
# Text with the markers mixed in, as a hostile harness would print it.
HOSTILE = st.lists(st.one_of(st.text(), st.sampled_from(MARKERS))).map("\n".join)
# What a round trip keeps exactly: printable text with no line that reads as a marker.
PLAIN = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
    | st.sampled_from(" \t\n"),
).filter(lambda text: not any(line.strip().startswith("===") for line in text.split("\n")))


def test_real_output_gives_the_example_and_the_crash() -> None:
    assert parse_shrink_output(REAL_OUTPUT) == ShrinkOutput(EXAMPLE, did_not_reproduce=False)
    crash = parse_crash(REAL_OUTPUT)
    assert crash is not None
    assert (crash.exception_type, crash.frames[-1].path) == (
        "IndexError",
        "/src/target/pkg/parse.py",
    )


def test_did_not_reproduce() -> None:
    parsed = parse_shrink_output(f"noise\n{DID_NOT_REPRODUCE_MARKER}\n")
    assert parsed == ShrinkOutput(None, did_not_reproduce=True)
    assert parse_shrink_output("") == ShrinkOutput(None, did_not_reproduce=False)


def test_the_last_complete_block_wins() -> None:
    fake = format_falsifying_example("Failing test case: fake()")
    real = format_falsifying_example(EXAMPLE)
    unterminated = f"{FALSIFYING_EXAMPLE_MARKER}\nnever ended"
    text = f"{fake}\n{real}\n{unterminated}\n{END_FALSIFYING_EXAMPLE_MARKER.upper()}"
    assert parse_shrink_output(text).falsifying_example == EXAMPLE


def test_marker_lines_inside_an_example_cannot_end_or_restart_it() -> None:
    example = f"x(\n{END_FALSIFYING_EXAMPLE_MARKER}\n  {FALSIFYING_EXAMPLE_MARKER}\n)"
    block = format_falsifying_example(example)
    assert block.count("\n" + END_FALSIFYING_EXAMPLE_MARKER) == 1
    parsed = parse_shrink_output(block).falsifying_example
    assert parsed == f"x(\n\\{END_FALSIFYING_EXAMPLE_MARKER}\n\\  {FALSIFYING_EXAMPLE_MARKER}\n)"
    # An indented marker printed by the harness is content, not a marker.
    assert parse_shrink_output(f"  {DID_NOT_REPRODUCE_MARKER}").did_not_reproduce is False


def test_long_examples_are_truncated_with_a_marker_once() -> None:
    block = format_falsifying_example("x" * (MAX_EXAMPLE_CHARS + 10))
    parsed = parse_shrink_output(block).falsifying_example
    assert parsed == "x" * MAX_EXAMPLE_CHARS + "\n" + TRUNCATED_MARKER
    # A harness's own block is bounded the same way.
    lines = "y\n" * MAX_EXAMPLE_CHARS
    raw = f"{FALSIFYING_EXAMPLE_MARKER}\n{lines}{END_FALSIFYING_EXAMPLE_MARKER}"
    parsed = parse_shrink_output(raw).falsifying_example
    assert parsed is not None
    assert parsed.endswith(TRUNCATED_MARKER)
    assert len(parsed) == MAX_EXAMPLE_CHARS + 1 + len(TRUNCATED_MARKER)


def test_control_characters_are_shown_escaped() -> None:
    block = format_falsifying_example("a\x1b[31mred\x00\ud800\r\tb")
    assert parse_shrink_output(block).falsifying_example == "a\\x1b[31mred\\x00\\ud800\\x0d\tb"
    crlf = f"{FALSIFYING_EXAMPLE_MARKER}\r\nx\r\n{END_FALSIFYING_EXAMPLE_MARKER}\r\n"
    assert parse_shrink_output(crlf).falsifying_example == "x"


def test_huge_output_is_bounded_and_fast() -> None:
    block = format_falsifying_example(EXAMPLE)
    text = f"{FALSIFYING_EXAMPLE_MARKER}\n" * 500_000 + "z" * 5_000_000 + "\n" + block
    started = time.monotonic()
    assert parse_shrink_output(text).falsifying_example == EXAMPLE
    assert time.monotonic() - started < 5


def test_the_shim_copies_agree() -> None:
    for name in (
        "FALSIFYING_EXAMPLE_MARKER",
        "END_FALSIFYING_EXAMPLE_MARKER",
        "DID_NOT_REPRODUCE_MARKER",
        "TRUNCATED_MARKER",
        "MAX_EXAMPLE_CHARS",
    ):
        assert getattr(shim, name) == getattr(shim_output, name), name
    assert shim.SHIM_EXCEPTION_MARKER == SHIM_EXCEPTION_MARKER


@settings(max_examples=300)
@given(HOSTILE)
def test_never_raises_and_stays_bounded(text: str) -> None:
    parsed = parse_shrink_output(text)
    assert parsed.falsifying_example is None or (
        len(parsed.falsifying_example) <= MAX_EXAMPLE_CHARS + 1 + len(TRUNCATED_MARKER)
    )


@settings(max_examples=200)
@given(HOSTILE, PLAIN, st.text(st.characters(blacklist_characters="=")))
def test_a_real_block_round_trips_after_any_noise(before: str, example: str, after: str) -> None:
    text = f"{before}\n{format_falsifying_example(example)}\n{after}"
    assert parse_shrink_output(text).falsifying_example == example


@given(st.text())
def test_the_shim_formats_blocks_like_the_parser_expects(example: str) -> None:
    assert shim.format_falsifying_example(example) == format_falsifying_example(example)
