"""Tracebacks in crash output: the crash's own exception, chains, groups, hostile text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.pytraceback import (
    ATHERIS_EXCEPTION_MARKER,
    HEAD_FRAMES,
    MAX_CHAIN_LINKS,
    MAX_MESSAGE_CHARS,
    MAX_TYPE_CHARS,
    SHIM_EXCEPTION_MARKER,
    TAIL_FRAMES,
    Frame,
    ParsedException,
    Relation,
    join_stacks,
    parse_crash,
)
from harnesses.stackdump import parse_stack_dump

DATA = Path(__file__).resolve().parents[2] / "data" / "engine_output"
# Captures of the signature corpus, with the project root written as /work/repo.
CORPUS = DATA.parent / "tracebacks"


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _ids(frames: tuple[Frame, ...]) -> list[str]:
    return [
        f"{f.path.removeprefix('/src/target/').removeprefix('/work/repo/')}:{f.function}"
        for f in frames
    ]


def _parse(text: str) -> ParsedException:
    parsed = parse_crash(text)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("name", "exception_type", "message", "frames"),
    [
        (
            "atheris_exception.txt",
            "IndexError",
            "index out of range",
            ["h_exc.py:TestOneInput", "pkg/parser.py:parse", "pkg/parser.py:unescape"],
        ),
        # atheris prints neither the cause nor the group members: the top exception only.
        (
            "atheris_chained.txt",
            "ParseError",
            "bad token",
            ["h_chain.py:TestOneInput", "pkg/parser.py:parse_chained"],
        ),
        (
            "atheris_exception_group.txt",
            "ExceptionGroup",
            "several failures (1 sub-exception)",
            ["h_group.py:TestOneInput"],
        ),
        ("atheris_sys_exit.txt", "SystemExit", "2", ["h_sysexit.py:TestOneInput"]),
        (
            "atheris_recursion.txt",
            "RecursionError",
            "maximum recursion depth exceeded while calling a Python object",
            ["h_rec.py:TestOneInput", *["pkg/parser.py:recurse"] * 3],
        ),
        (
            "python_syntax_error.txt",
            "SyntaxError",
            "invalid syntax",
            ["syntax.py:<module>", "mypkg/broken.py:"],
        ),
    ],
)
def test_captured_crashes(name: str, exception_type: str, message: str, frames: list[str]) -> None:
    parsed = _parse(_read(name))
    assert (parsed.exception_type, parsed.message, _ids(parsed.frames)) == (
        exception_type,
        message,
        frames,
    )
    assert parsed.chain == ()


def test_frames_keep_line_numbers_and_source_text_without_carets() -> None:
    parsed = _parse(_read("atheris_exception.txt"))
    assert parsed.frames[-1] == Frame("/src/target/pkg/parser.py", 7, "unescape", "return data[5]")
    assert parsed.frames[1].text == "return unescape(data)"


def test_the_crash_wins_over_interpreter_noise_before_and_after_it() -> None:
    text = _read("atheris_exception_ignored.txt")
    assert text.count("Exception ignored in") == 3
    parsed = _parse(text)
    assert parsed.exception_type == "IndexError"
    assert _ids(parsed.frames)[-1] == "pkg/parser.py:unescape"


def test_noise_only_output_has_no_crash() -> None:
    text = (
        "Exception ignored in: <function Noisy.__del__ at 0x7f>\n"
        "Traceback (most recent call last):\n"
        '  File "/src/target/h.py", line 8, in __del__\n'
        "RuntimeError: noise\n"
    )
    assert parse_crash(text) is None


def test_hypothesis_through_atheris_keeps_every_printed_frame() -> None:
    parsed = _parse(_read("atheris_hypothesis.txt"))
    assert parsed.exception_type == "IndexError"
    assert parsed.frames[0].path.endswith("site-packages/hypothesis/core.py")
    assert _ids(parsed.frames)[-3:] == [
        "h_hyp.py:test_parse",
        "pkg/parser.py:parse",
        "pkg/parser.py:unescape",
    ]


def test_a_direct_cause_chain_yields_the_innermost_cause_with_its_whole_stack() -> None:
    parsed = _parse(_read("python_chain_from.txt"))
    assert (parsed.exception_type, parsed.message) == ("KeyError", "b'\\x00'")
    # The cause's traceback starts at parse, which caught it; <module> is printed with the
    # ParseError. parse keeps the line of the cause's frame (the try body), not the raise.
    assert _ids(parsed.frames) == [
        "chain_from.py:<module>",
        "mypkg/parser.py:parse",
        "mypkg/parser.py:lookup",
    ]
    assert [f.line for f in parsed.frames] == [2, 10, 5]
    [link] = parsed.chain
    assert link.relation is Relation.CAUSE
    assert (link.exception_type, link.message) == (
        "mypkg.errors.ParseError",
        "bad token b'\\x00zz'",
    )
    assert _ids(link.frames) == ["chain_from.py:<module>", "mypkg/parser.py:parse"]


def test_an_implicit_context_chain_yields_the_first_exception() -> None:
    parsed = _parse(_read("python_chain_during.txt"))
    assert parsed.exception_type == "KeyError"
    assert _ids(parsed.frames) == [
        "chain_during.py:<module>",
        "mypkg/parser.py:parse_handling",
        "mypkg/parser.py:lookup",
    ]
    assert parsed.frames[1].line == 17
    [link] = parsed.chain
    assert (link.relation, link.exception_type) == (Relation.CONTEXT, "ValueError")
    assert _ids(link.frames) == ["chain_during.py:<module>", "mypkg/parser.py:parse_handling"]


def test_an_exception_group_yields_its_first_leaf_under_the_group_frames() -> None:
    parsed = _parse(_read("python_exception_group.txt"))
    assert (parsed.exception_type, parsed.message) == ("ValueError", "negative: -1")
    # run raised the group and caught the leaf: one call, so one frame (the leaf's line).
    assert _ids(parsed.frames) == [
        "group.py:<module>",
        "group.py:run",
        "mypkg/parser.py:validate",
    ]
    assert parsed.frames[1].line == 7
    [link] = parsed.chain
    assert (link.relation, link.exception_type) == (Relation.GROUP, "ExceptionGroup")
    assert link.message == "several (3 sub-exceptions)"


def test_a_nested_first_group_is_descended_into() -> None:
    parsed = _parse(_read("python_exception_group_nested.txt"))
    assert (parsed.exception_type, parsed.message) == ("ValueError", "negative: -5")
    # The inner group was never raised: it has no frames to join through.
    assert _ids(parsed.frames) == [
        "nested_first.py:<module>",
        "nested_first.py:run",
        "mypkg/parser.py:validate",
    ]
    assert [link.message for link in parsed.chain] == [
        "inner first (1 sub-exception)",
        "outer (2 sub-exceptions)",
    ]


def test_hypothesis_multiple_failures_yield_the_first_printed_failure() -> None:
    parsed = _parse(_read("hypothesis_multiple_failures.txt"))
    assert (parsed.exception_type, parsed.message) == ("TypeError", "too big: 11")
    # Hypothesis trims the leaf's traceback to the test; the test's wrapper is the frame the
    # group was raised through, so Hypothesis' own frames drop out.
    assert _ids(parsed.frames) == [
        "<string>:<module>",
        "test_hyp_multi.py:test_validate",
        "mypkg/parser.py:validate",
    ]
    assert parsed.chain[-1].message == "Hypothesis found 2 distinct failures. (2 sub-exceptions)"


def test_a_chain_inside_a_group_leaf_from_the_traceback_module() -> None:
    # The shim prints with traceback.print_exception: continuation lines keep the margin.
    text = _read("traceback_module_exception_group.txt")
    assert text.startswith(SHIM_EXCEPTION_MARKER)
    parsed = _parse(text)
    assert (parsed.exception_type, parsed.message) == ("KeyError", "b'q'")
    # Joined through the ParseError, the inner group (raised from run) and the outer group.
    assert _ids(parsed.frames) == [
        "tb_group.py:<module>",
        "tb_group.py:run",
        "mypkg/parser.py:parse",
        "mypkg/parser.py:lookup",
    ]
    assert [f.line for f in parsed.frames] == [20, 8, 10, 5]
    assert [(link.relation, link.exception_type) for link in parsed.chain] == [
        (Relation.CAUSE, "mypkg.errors.ParseError"),
        (Relation.GROUP, "ExceptionGroup"),
        (Relation.GROUP, "ExceptionGroup"),
    ]


def test_interpreter_group_output_with_unprefixed_continuation_lines() -> None:
    parsed = _parse(_read("python_exception_group_context.txt"))
    assert (parsed.exception_type, parsed.message) == ("mypkg.errors.ParseError", "bad token b'q'")
    assert _ids(parsed.frames) == [
        "group_ctx.py:<module>",
        "group_ctx.py:run",
        "mypkg/parser.py:parse",
    ]
    assert [link.message for link in parsed.chain] == [
        "inner raised (1 sub-exception)",
        "outer (2 sub-exceptions)",
    ]


def test_a_chain_of_three_is_joined_link_by_link() -> None:
    # KeyError caught in fetch -> LookupError caught in load -> RuntimeError (uncaught).
    parsed = _parse((CORPUS / "chain_three.txt").read_text(encoding="utf-8"))
    assert parsed.exception_type == "KeyError"
    assert _ids(parsed.frames) == [
        "fuzz/fuzz_store.py:<module>",
        "fuzz/fuzz_store.py:TestOneInput",
        "pkg/api.py:handle",
        "pkg/store.py:load",
        "pkg/store.py:fetch",
        "pkg/store.py:read_record",
    ]
    assert [f.line for f in parsed.frames[3:]] == [21, 10, 5]
    assert [(link.relation, link.exception_type) for link in parsed.chain] == [
        (Relation.CAUSE, "LookupError"),
        (Relation.CONTEXT, "RuntimeError"),
    ]
    # Links keep the frames printed for them.
    assert _ids(parsed.chain[0].frames) == ["pkg/store.py:load", "pkg/store.py:fetch"]


def test_the_outer_exception_may_be_raised_below_the_catcher() -> None:
    # The handler in other calls fail, which raises: the catcher is not the outer's last frame.
    text = """\
Traceback (most recent call last):
  File "/src/target/pkg/a.py", line 16, in other
    return lookup({}, data)
  File "/src/target/pkg/a.py", line 6, in lookup
    return table[key]
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/src/target/pkg/a.py", line 18, in other
    fail("raised elsewhere")
  File "/src/target/pkg/a.py", line 10, in fail
    raise ParseError(message)
pkg.a.ParseError: raised elsewhere
"""
    parsed = _parse(text)
    assert _ids(parsed.frames) == ["<string>:<module>", "pkg/a.py:other", "pkg/a.py:lookup"]
    assert parsed.frames[1].line == 16


def test_a_group_that_caused_the_crash_is_joined_under_the_exception_it_caused() -> None:
    parsed = _parse((CORPUS / "group_cause.txt").read_text(encoding="utf-8"))
    assert parsed.exception_type == "ValueError"
    assert _ids(parsed.frames) == [
        "fuzz/fuzz_store.py:<module>",
        "fuzz/fuzz_store.py:TestOneInput",
        "pkg/api.py:handle",
        "pkg/store.py:load_batch",
        "pkg/store.py:parse_all",
        "pkg/store.py:parse_item",
    ]
    assert [f.line for f in parsed.frames[3:]] == [43, 34, 27]
    assert [(link.relation, link.exception_type) for link in parsed.chain] == [
        (Relation.GROUP, "ExceptionGroup"),
        (Relation.CAUSE, "RuntimeError"),
    ]


def test_a_cause_of_a_group_is_joined_under_the_group() -> None:
    # The group's only leaf was never raised: its stack is the group's.
    parsed = _parse((CORPUS / "group_from_cause.txt").read_text(encoding="utf-8"))
    assert parsed.exception_type == "KeyError"
    assert _ids(parsed.frames) == [
        "fuzz/fuzz_store.py:<module>",
        "fuzz/fuzz_store.py:TestOneInput",
        "pkg/api.py:handle",
        "pkg/store.py:check_all",
        "pkg/store.py:<listcomp>",
    ]


def _block(exception: str, *frames: str) -> str:
    """A traceback block of ``path:function`` frames, each at line 1."""
    lines = ["Traceback (most recent call last):"]
    for frame in frames:
        path, _, function = frame.rpartition(":")
        lines.append(f'  File "/src/target/{path}", line 1, in {function}')
    return "\n".join([*lines, exception])


def _chain(*blocks: str) -> str:
    separator = "\n\nThe above exception was the direct cause of the following exception:\n\n"
    return separator.join(blocks) + "\n"


@pytest.mark.parametrize(
    ("cause", "outer", "frames"),
    [
        # A cause without frames: only the outer stack is known.
        ([], ["m.py:<module>", "a.py:f"], ["m.py:<module>", "a.py:f"]),
        # An outer block without frames: the cause's own.
        (["a.py:f", "a.py:g"], [], ["a.py:f", "a.py:g"]),
        ([], [], []),
        # The catcher is not on the outer stack (a stored cause raised elsewhere): both kept.
        (
            ["a.py:f", "a.py:g"],
            ["m.py:<module>", "b.py:h"],
            ["m.py:<module>", "b.py:h", "a.py:f", "a.py:g"],
        ),
        # Same function in another file is another function.
        (["a.py:f"], ["m.py:<module>", "b.py:f"], ["m.py:<module>", "b.py:f", "a.py:f"]),
        # Recursion: the innermost call with the catcher's function is the catcher.
        (
            ["a.py:f", "a.py:g"],
            ["m.py:<module>", "a.py:f", "a.py:f", "b.py:h"],
            ["m.py:<module>", "a.py:f", "a.py:f", "a.py:g"],
        ),
    ],
)
def test_joining_odd_stacks(cause: list[str], outer: list[str], frames: list[str]) -> None:
    parsed = _parse(_chain(_block("KeyError: k", *cause), _block("E: e", *outer)))
    assert parsed.exception_type == "KeyError"
    assert _ids(parsed.frames) == frames


def test_joined_long_stacks_stay_capped_and_count_what_they_drop() -> None:
    outer = [f"m.py:f{n}" for n in range(1000)]
    cause = ["m.py:f999", *(f"c.py:g{n}" for n in range(300))]
    parsed = _parse(_chain(_block("KeyError: k", *cause), _block("E: e", *outer)))
    assert len(parsed.frames) == HEAD_FRAMES + TAIL_FRAMES
    assert parsed.frames_omitted == 1000 + 300 - HEAD_FRAMES - TAIL_FRAMES
    assert (parsed.frames[0].function, parsed.frames[-1].function) == ("f0", "g299")


def test_join_stacks_counts_omitted_frames_above_the_join_only() -> None:
    head = tuple(Frame("/a.py", 1, f"f{n}") for n in range(HEAD_FRAMES))
    # The outer stack lost 50 frames after its head; the catcher is in the head.
    frames, omitted = join_stacks(head, (Frame("/a.py", 2, "f3"),), 50)
    assert ([f.function for f in frames], omitted) == (["f0", "f1", "f2", "f3"], 0)
    frames, omitted = join_stacks(head, (Frame("/b.py", 2, "g"),), 50)
    assert (len(frames), omitted) == (HEAD_FRAMES + 1, 50)


def test_the_shim_report_wins_over_the_shorter_atheris_report_after_it() -> None:
    shim = _read("python_chain_from.txt")
    atheris = _read("atheris_chained.txt")
    parsed = _parse(f"{SHIM_EXCEPTION_MARKER}\n{shim}\n{atheris}")
    assert parsed.exception_type == "KeyError"


def test_a_bare_syntax_error_without_traceback_header() -> None:
    text = (
        '  File "/src/target/m.py", line 1\n    def f(:\n          ^\nSyntaxError: invalid syntax\n'
    )
    parsed = _parse(text)
    assert parsed.exception_type == "SyntaxError"
    assert parsed.frames == (Frame("/src/target/m.py", 1, "", "def f(:"),)


def test_multi_line_messages_keep_their_first_line() -> None:
    parsed = _parse(_read("atheris_chained.txt").replace("bad token", "bad token \x1b[31mred"))
    assert parsed.message == "bad token red"


def test_hostile_message_text_is_plain_and_bounded() -> None:
    message = "\x1b]0;title\x07\x00evil\x1b[2J" + "x" * 5000
    text = (
        f"Traceback (most recent call last):\n"
        f'  File "/src/target/pkg/a.py", line 1, in f\n'
        f"pkg.E\x00rr: {message}\n"
    )
    parsed = _parse(text)
    assert parsed.exception_type == "pkg.Err"
    assert parsed.message.startswith("evilxxx")
    assert len(parsed.message) == MAX_MESSAGE_CHARS


QUOTED = (
    "Traceback (most recent call last):\n"
    '  File "/evil/fake.py", line 1, in forged\n'
    "FakeError: not the crash"
)


def test_a_traceback_quoted_in_a_message_is_not_the_crash() -> None:
    real = (
        "Traceback (most recent call last):\n"
        '  File "/src/target/pkg/a.py", line 3, in f\n'
        f"ValueError: oops\n{QUOTED}\n"
    )
    assert _parse(real).exception_type == "ValueError"
    # atheris prints the message before the traceback too, quoted traceback included.
    atheris = f" {ATHERIS_EXCEPTION_MARKER}\nValueError: oops\n{QUOTED}\n{real}\n"
    parsed = _parse(atheris)
    assert (parsed.exception_type, _ids(parsed.frames)) == ("ValueError", ["pkg/a.py:f"])


def test_a_quoted_chain_separator_only_adds_a_link() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/src/target/pkg/a.py", line 3, in f\n'
        "ValueError: oops\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        f"{QUOTED}\n"
    )
    parsed = _parse(text)
    assert parsed.exception_type == "ValueError"
    assert [link.exception_type for link in parsed.chain] == ["FakeError"]


def test_long_stacks_keep_the_outermost_and_innermost_frames() -> None:
    frames = "".join(
        f'  File "/src/target/m.py", line {n}, in f{n}\n    x()\n' for n in range(1000)
    )
    parsed = _parse(f"Traceback (most recent call last):\n{frames}RecursionError: deep\n")
    assert len(parsed.frames) == HEAD_FRAMES + TAIL_FRAMES
    assert parsed.frames_omitted == 1000 - HEAD_FRAMES - TAIL_FRAMES
    assert parsed.frames[0].function == "f0"
    assert parsed.frames[-1].function == "f999"
    assert parsed.frames[HEAD_FRAMES].function == f"f{1000 - TAIL_FRAMES}"


def test_long_chains_are_capped() -> None:
    block = 'Traceback (most recent call last):\n  File "/a.py", line 1, in f\nE: x\n'
    separator = "\nThe above exception was the direct cause of the following exception:\n\n"
    parsed = _parse(separator.join([block] * 100))
    assert len(parsed.chain) == MAX_CHAIN_LINKS


def _nested_groups(depth: int) -> str:
    lines = []
    for level in range(depth):
        pad = " " * (2 * level)
        if level == 0:
            lines.append(f"{pad}  + Exception Group Traceback (most recent call last):")
        lines.append(f"{pad}  | ExceptionGroup: level {level} (1 sub-exception)")
        lines.append(f"{pad}  +-+---------------- 1 ----------------")
    pad = " " * (2 * depth)
    lines.append(f"{pad}  | ValueError: leaf")
    return "\n".join(lines)


def test_deeply_nested_groups_are_bounded_and_quick() -> None:
    parsed = _parse(_nested_groups(10))
    assert (parsed.exception_type, parsed.message) == ("ValueError", "leaf")
    started = time.monotonic()
    deep = parse_crash(_nested_groups(2000))
    assert deep is not None
    assert len(deep.chain) <= 2 * MAX_CHAIN_LINKS
    assert time.monotonic() - started < 5


def test_groups_chained_inside_group_leaves_cannot_exhaust_the_stack() -> None:
    # Each level's leaf is caused by a further group: recursion must stop at a fixed depth.
    separator = "The above exception was the direct cause of the following exception:"
    lines = ["ValueError: leaf"]
    for _ in range(900):
        header = "  + Exception Group Traceback (most recent call last):"
        lines = ["KeyError: k", "", separator, "", header, *(f"  | {line}" for line in lines)]
    parsed = parse_crash("\n".join(lines))
    assert parsed is not None
    assert parsed.exception_type == "KeyError"


@pytest.mark.parametrize(
    "text",
    [
        "Traceback (most recent call last):\n" * 200_000,
        ('  File "' + '", line 1, in ' * 300 + "\n") * 2000,
        "  + Exception Group Traceback (most recent call last):\n" + "  |\n" * 200_000,
        "x" * 3_000_000,
        ("The above exception was the direct cause of the following exception:\n\n" * 50_000),
    ],
)
def test_pathological_inputs_parse_in_linear_time(text: str) -> None:
    started = time.monotonic()
    parse_crash(text)
    parse_stack_dump(text)
    assert time.monotonic() - started < 10


def test_stack_dump_of_a_timeout() -> None:
    dump = parse_stack_dump(_read("atheris_timeout.txt"))
    assert dump is not None
    assert (dump.fatal_error, dump.signal) == (None, None)
    assert _ids(dump.frames) == [
        "h_timeout.py:<module>",
        "h_timeout.py:TestOneInput",
        "pkg/parser.py:spin",
    ]
    assert dump.frames[-1].line == 28


def test_stack_dump_of_a_fatal_signal() -> None:
    dump = parse_stack_dump(_read("atheris_segv_faulthandler.txt"))
    assert dump is not None
    assert (dump.fatal_error, dump.signal) == ("Segmentation fault", "SIGSEGV")
    assert dump.frames[-1].path == "/usr/lib/python3.11/ctypes/__init__.py"
    assert dump.frames[-1].function == "string_at"


def test_output_without_a_dump_or_traceback() -> None:
    assert parse_stack_dump(_read("atheris_exception.txt")) is None
    assert parse_crash(_read("atheris_oom.txt")) is None
    assert parse_crash("") is None


FRAGMENTS = [
    "Traceback (most recent call last):",
    "  + Exception Group Traceback (most recent call last):",
    "Exception Group Traceback (most recent call last):",
    '  File "/src/target/pkg/a.py", line 3, in f',
    '  File "/src/target/pkg/a.py", line 3',
    '  File "/src/target/pkg/a.py", line 3 in f',
    "    return data[5]",
    "           ~~~~^^^",
    "  [Previous line repeated 996 more times]",
    "ValueError: boom",
    "pkg.errors.ParseError: multi",
    "line two",
    "",
    "  | ",
    '  |   File "/x.py", line 1, in g',
    "  | KeyError: 'k'",
    "  +-+---------------- 1 ----------------",
    "    | TypeError: t",
    "    +---------------- 2 ----------------",
    "    +------------------------------------",
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
    "Exception ignored in: <function f at 0x1>",
    f" {ATHERIS_EXCEPTION_MARKER}",
    SHIM_EXCEPTION_MARKER,
    "==12== ERROR: libFuzzer: fuzz target exited",
    "Fatal Python error: Segmentation fault",
    " === Timeout: 2s elapsed, timeout=1s ===",
    "Current thread 0x00007f (most recent call first):",
    "Thread 0x00007f (most recent call first):",
    "\x1b[31m\x00\ud800",
]

traceback_like = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=60).map(
    "\n".join
)


def _check_bounds(parsed: ParsedException | None) -> None:
    if parsed is None:
        return
    assert len(parsed.message) <= MAX_MESSAGE_CHARS
    assert len(parsed.exception_type) <= MAX_TYPE_CHARS
    assert len(parsed.frames) <= HEAD_FRAMES + TAIL_FRAMES
    assert len(parsed.chain) <= 2 * MAX_CHAIN_LINKS
    for text in (parsed.exception_type, parsed.message):
        assert all(c.isprintable() or c == "\t" for c in text)
        text.encode("utf-8")


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check_bounds(parse_crash(text))
    parse_stack_dump(text)


@settings(max_examples=500)
@given(traceback_like)
def test_traceback_like_text_never_raises_and_stays_bounded(text: str) -> None:
    _check_bounds(parse_crash(text))
    dump = parse_stack_dump(text)
    if dump is not None:
        assert len(dump.frames) <= HEAD_FRAMES + TAIL_FRAMES
