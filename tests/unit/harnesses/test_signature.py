"""The crash signature: frame origins, the canonical string, its sha1, titles."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harnesses.errors import SignatureError
from harnesses.pytraceback import Frame, parse_crash
from harnesses.signature import (
    MAX_TITLE_CHARS,
    SHIM_FILE_PREFIX,
    CrashKind,
    FrameOrigin,
    classify,
    crash_signature,
    crash_title,
    frame_id,
    relative_path,
)
from harnesses.stackdump import parse_stack_dump

DATA = Path(__file__).resolve().parents[2] / "data" / "engine_output"
ROOTS = ["/src/target", "/sandbox/worktree/"]
SITE = "/venv/lib/python3.11/site-packages"


def _frames(*specs: str) -> list[Frame]:
    """Frames from ``path:function`` specs, outermost first, with made-up line numbers."""
    return [Frame(p, n + 1, f) for n, (p, _, f) in enumerate(s.rpartition(":") for s in specs)]


def test_frame_id_is_path_colon_function() -> None:
    assert frame_id("pkg/parser.py", "unescape") == "pkg/parser.py:unescape"


@pytest.mark.parametrize(
    ("path", "harness", "origin"),
    [
        ("/src/target/pkg/parser.py", None, FrameOrigin.REPO),
        ("/sandbox/worktree/pkg/parser.py", None, FrameOrigin.REPO),
        ("/src/target/fuzz/fuzz_parse.py", "fuzz/fuzz_parse.py", FrameOrigin.HARNESS),
        ("/sandbox/worktree/fuzz/fuzz_parse.py", "fuzz/fuzz_parse.py", FrameOrigin.HARNESS),
        ("/src/target/fuzz/fuzz_parse.py", "/src/target/fuzz/fuzz_parse.py", FrameOrigin.HARNESS),
        ("fuzz/fuzz_parse.py", "fuzz/fuzz_parse.py", FrameOrigin.HARNESS),
        ("/src/target/fuzz/other.py", "fuzz/fuzz_parse.py", FrameOrigin.REPO),
        (f"{SITE}/hypothesis/core.py", None, FrameOrigin.SITE_PACKAGES),
        ("/usr/lib/python3/dist-packages/yaml/reader.py", None, FrameOrigin.SITE_PACKAGES),
        # A virtualenv inside the worktree is still installed code, not the repository's.
        ("/src/target/.venv/lib/python3.11/site-packages/x/y.py", None, FrameOrigin.SITE_PACKAGES),
        ("/usr/lib/python3.11/json/decoder.py", None, FrameOrigin.STDLIB),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/ctypes/__init__.py", None, "stdlib"),
        ("<frozen importlib._bootstrap>", None, FrameOrigin.STDLIB),
        (f"/tmp/scratch/{SHIM_FILE_PREFIX}hypothesis.py", None, FrameOrigin.SHIM),
        (f"/src/target/{SHIM_FILE_PREFIX}atheris.py", None, FrameOrigin.SHIM),
        ("<string>", None, FrameOrigin.UNKNOWN),
        ("/opt/elsewhere/mod.py", None, FrameOrigin.UNKNOWN),
        ("pkg/parser.py", None, FrameOrigin.UNKNOWN),
        ("/src/target2/pkg/parser.py", None, FrameOrigin.UNKNOWN),
        ("/src/target/../etc/passwd.py", None, FrameOrigin.UNKNOWN),
        ("", None, FrameOrigin.UNKNOWN),
    ],
)
def test_classify(path: str, harness: str | None, origin: str) -> None:
    assert classify(path, roots=ROOTS, harness_path=harness) == origin


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/src/target/pkg/parser.py", "pkg/parser.py"),
        ("/sandbox/worktree/pkg/parser.py", "pkg/parser.py"),
        (f"{SITE}/hypothesis/core.py", "hypothesis/core.py"),
        ("/src/target/.venv/lib/python3.11/site-packages/x/y.py", "x/y.py"),
        ("/usr/lib/python3.11/json/decoder.py", "json/decoder.py"),
        ("/opt/py/lib/python3.13t/json/decoder.py", "json/decoder.py"),
        (f"/tmp/s/{SHIM_FILE_PREFIX}hypothesis.py", f"{SHIM_FILE_PREFIX}hypothesis.py"),
        ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
        ("/opt/elsewhere/mod.py", "/opt/elsewhere/mod.py"),
    ],
)
def test_relative_path(path: str, expected: str) -> None:
    assert relative_path(path, roots=ROOTS) == expected


def test_a_relative_root_is_refused_naming_it() -> None:
    with pytest.raises(SignatureError, match="'src/target'"):
        classify("/src/target/x.py", roots=["src/target"], harness_path=None)


@pytest.mark.parametrize(
    ("kind", "exception_type", "frames", "canonical", "sha1"),
    [
        (
            "exception",
            "IndexError",
            _frames(
                "/src/target/fuzz_parse.py:TestOneInput",
                "/src/target/pkg/parser.py:parse",
                "/src/target/pkg/parser.py:unescape",
            ),
            "exception|IndexError|pkg/parser.py:unescape|pkg/parser.py:parse|",
            "f055ff44183393a8ec18f1ac46c9a5e07b5fd341",
        ),
        (
            "timeout",
            "ignored for a timeout",
            _frames("/src/target/fuzz_parse.py:<module>", "/src/target/pkg/parser.py:spin"),
            "timeout||pkg/parser.py:spin||",
            "aad6ca94027fdc6d7ca91e508b74a74d96171043",
        ),
        (
            "signal",
            "SIGSEGV",
            [],
            "signal|SIGSEGV|||",
            "4fbead2e241885aefd571c5829ac6a51cab9c554",
        ),
        (
            "exception",
            "mypkg.errors.ParseError",
            [("/sandbox/worktree/pkg/parser.py", "parse")],
            "exception|mypkg.errors.ParseError|pkg/parser.py:parse||",
            "d6f98807340ecb1c8ee313dd372f026c8cb7a4b9",
        ),
    ],
)
def test_hand_computed_signatures(
    kind: str, exception_type: str, frames: list[Frame], canonical: str, sha1: str
) -> None:
    signature = crash_signature(
        kind, exception_type, frames, roots=ROOTS, harness_path="fuzz_parse.py"
    )
    assert signature.canonical == canonical
    assert signature.sha1 == sha1
    assert signature.kind == CrashKind(kind)


def _signature_of_capture(name: str, harness: str) -> str:
    parsed = parse_crash((DATA / name).read_text(encoding="utf-8"))
    assert parsed is not None
    kind = "exit" if parsed.exception_type == "SystemExit" else "exception"
    return crash_signature(
        kind, parsed.exception_type, parsed.frames, roots=["/src/target"], harness_path=harness
    ).canonical


def test_captured_atheris_crash_skips_the_harness_frame() -> None:
    canonical = _signature_of_capture("atheris_exception.txt", "h_exc.py")
    assert canonical == "exception|IndexError|pkg/parser.py:unescape|pkg/parser.py:parse|"


def test_the_same_bug_through_a_hypothesis_harness_has_the_same_signature() -> None:
    # Hypothesis' own frames (site-packages) and the test file (the harness) are skipped.
    direct = _signature_of_capture("atheris_exception.txt", "h_exc.py")
    through_hypothesis = _signature_of_capture("atheris_hypothesis.txt", "h_hyp.py")
    assert through_hypothesis == direct


def test_deep_recursion_keeps_the_three_innermost_frames() -> None:
    canonical = _signature_of_capture("atheris_recursion.txt", "h_rec.py")
    expected = "exception|RecursionError|" + "|".join(["pkg/parser.py:recurse"] * 3)
    assert canonical == expected
    digest = hashlib.sha1(expected.encode(), usedforsecurity=False).hexdigest()
    assert digest == "d98432221302550860ea2a96400581791b5b0521"


def test_harness_only_frames_fall_back_to_the_harness() -> None:
    canonical = _signature_of_capture("atheris_sys_exit.txt", "h_sysexit.py")
    assert canonical == "exit||h_sysexit.py:TestOneInput||"


def test_timeout_signature_from_the_captured_stack_dump() -> None:
    dump = parse_stack_dump((DATA / "atheris_timeout.txt").read_text(encoding="utf-8"))
    assert dump is not None
    signature = crash_signature(
        "timeout", "", dump.frames, roots=["/src/target"], harness_path="h_timeout.py"
    )
    assert signature.canonical == "timeout||pkg/parser.py:spin||"


def test_site_packages_only_frames_are_used_when_nothing_else_is_left() -> None:
    frames = _frames(f"{SITE}/yaml/reader.py:read", "/usr/lib/python3.11/json/decoder.py:decode")
    signature = crash_signature("exception", "ValueError", frames, roots=ROOTS, harness_path=None)
    assert signature.frames == ("json/decoder.py:decode", "yaml/reader.py:read")


def test_fallback_order_is_repo_then_harness_then_installed_code() -> None:
    harness = "/src/target/fuzz/h.py:TestOneInput"
    library = f"{SITE}/lib/mod.py:f"
    shim = f"/tmp/{SHIM_FILE_PREFIX}x.py:main"

    def frames_of(*specs: str) -> tuple[str, ...]:
        return crash_signature(
            "exception", "E", _frames(*specs), roots=ROOTS, harness_path="fuzz/h.py"
        ).frames

    assert frames_of(shim, harness, library, "/src/target/pkg/a.py:g") == ("pkg/a.py:g",)
    assert frames_of(shim, harness, library) == ("fuzz/h.py:TestOneInput",)
    assert frames_of(shim, library, "<string>:x") == ("lib/mod.py:f",)
    assert frames_of(shim, "<string>:x") == ("<string>:x",)
    assert frames_of(shim) == (f"{SHIM_FILE_PREFIX}x.py:main",)
    assert frames_of() == ()


def test_a_line_number_change_keeps_the_signature_and_a_function_change_does_not() -> None:
    def signature(line: int, function: str) -> str:
        frames = [Frame("/src/target/pkg/parser.py", line, function, "return data[5]")]
        return crash_signature(
            "exception", "IndexError", frames, roots=ROOTS, harness_path=None
        ).sha1

    assert signature(7, "unescape") == signature(70, "unescape")
    assert signature(7, "unescape") != signature(7, "unquote")


def test_a_root_moved_by_a_bind_mount_keeps_the_signature() -> None:
    def signature(root: str) -> str:
        frames = [Frame(f"{root}/pkg/parser.py", 7, "unescape")]
        return crash_signature("exception", "E", frames, roots=ROOTS, harness_path=None).sha1

    assert signature("/src/target") == signature("/sandbox/worktree")


def test_kinds_and_types_are_validated_and_normalized() -> None:
    with pytest.raises(SignatureError, match="'crash'"):
        crash_signature("crash", "E", [], roots=ROOTS, harness_path=None)
    with pytest.raises(SignatureError, match="'segfault'"):
        crash_signature("signal", "segfault", [], roots=ROOTS, harness_path=None)
    assert crash_signature("oom", "MemoryError", [], roots=ROOTS, harness_path=None).canonical == (
        "oom||||"
    )
    unknown_signal = crash_signature("signal", "", [], roots=ROOTS, harness_path=None)
    assert unknown_signal.canonical == "signal||||"


def test_separators_and_control_characters_cannot_forge_fields() -> None:
    frames = [Frame("/src/target/a|b.py", 1, "f\x1b[31m")]
    signature = crash_signature("exception", "E|x", frames, roots=ROOTS, harness_path=None)
    assert signature.canonical == "exception|E%7Cx|a%7Cb.py:f[31m||"
    assert signature.canonical.count("|") == 4


@pytest.mark.parametrize(
    ("kind", "exception_type", "frames", "title"),
    [
        (
            "exception",
            "IndexError",
            ["pkg/parser.py:unescape"],
            "IndexError in unescape (pkg/parser.py)",
        ),
        ("timeout", "", ["pkg/parser.py:parse", "x.py:y"], "Timeout in parse (pkg/parser.py)"),
        (
            "signal",
            "SIGSEGV",
            ["ctypes/__init__.py:string_at"],
            "SIGSEGV in string_at (ctypes/__init__.py)",
        ),
        ("signal", "", [], "Signal"),
        ("oom", "", [], "Out of memory"),
        ("exit", "", ["fuzz/h.py:TestOneInput"], "Exit in TestOneInput (fuzz/h.py)"),
        ("exception", "SyntaxError", ["pkg/broken.py:"], "SyntaxError in pkg/broken.py"),
    ],
)
def test_crash_title(kind: str, exception_type: str, frames: list[str], title: str) -> None:
    assert crash_title(kind, exception_type, frames) == title


def test_crash_title_is_bounded_and_printable() -> None:
    title = crash_title("exception", "E" * 1000, ["p.py:f\nnext"])
    assert len(title) == MAX_TITLE_CHARS
    assert title.endswith("…")
    assert "\n" not in title
