"""The Hypothesis shim's triage modes, run as the worker runs them: a subprocess on a copy.

A tiny target project has a parser that fails on a trailing lone backslash. A crashing fuzzer
testcase (a buffer for ``fuzz_one_input``) is found in-process on a test with the same
strategy; ``--shrink`` must turn it into Hypothesis' minimal example and ``--replay-choices``
must replay that.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.database import choices_to_bytes

from harnesses.pytraceback import SHIM_EXCEPTION_MARKER, parse_crash
from harnesses.shim_output import DID_NOT_REPRODUCE_MARKER, parse_shrink_output
from harnesses.shims import HYPOTHESIS_SHIM

PARSE = dedent(
    """
    def parse(text):
        out = []
        index = 0
        while index < len(text):
            if text[index] == "\\\\":
                out.append(text[index + 1])  # IndexError on a trailing lone backslash
                index += 2
            else:
                out.append(text[index])
                index += 1
        return "".join(out)
    """
)
ALPHABET = "ab\\"
TESTS = dedent(
    f"""
    from hypothesis import given, strategies as st

    from pkg.parse import parse


    @given(st.text(alphabet={ALPHABET!r}))
    def test_parse(s):
        parse(s)


    class TestParse:
        @given(st.text(alphabet={ALPHABET!r}))
        def test_parse_method(self, s):
            parse(s)
    """
)
QUALNAMES = ["test_parse", "TestParse::test_parse_method"]


def _parse(text: str) -> str:
    namespace: dict[str, object] = {}
    exec(PARSE, namespace)  # noqa: S102  # our own fixed source, the target's parser
    parse = namespace["parse"]
    assert callable(parse)
    return str(parse(text))


@settings(database=None)
@given(st.text(alphabet=ALPHABET))
def _same_strategy(s: str) -> None:
    # fuzz_one_input reads a buffer by the strategy alone: this finds the target's testcases.
    _parse(s)


def _testcase(crashes: bool) -> bytes:
    # Seed 1 finds 'ab\\ab\\baba\\\\ababb\\' (64 bytes), which --shrink takes down to '\\'.
    fuzz_one_input = _same_strategy.hypothesis.fuzz_one_input  # type: ignore[attr-defined]
    rng = random.Random(1)
    for _ in range(10_000):
        buffer = rng.randbytes(64)
        try:
            result = fuzz_one_input(buffer)
        except IndexError:
            if crashes:
                return buffer
        else:
            if not crashes and result is not None:
                return buffer
    raise AssertionError("no testcase found")


@dataclass(frozen=True)
class Target:
    root: Path
    shim: Path

    def run(self, qualname: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run the shim's copy as the worker does, with the target's interpreter."""
        argv = [sys.executable, str(self.shim), str(self.root), "tests/test_parse.py", qualname]
        return subprocess.run(
            [*argv, *map(str, args)],
            capture_output=True,
            text=True,
            cwd=self.root.parent,
            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
            timeout=60,
            check=False,
        )


@pytest.fixture
def target(tmp_path: Path) -> Target:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "parse.py").write_text(PARSE)
    (root / "tests" / "test_parse.py").write_text(TESTS)
    shim = tmp_path / "run" / HYPOTHESIS_SHIM.name
    shim.parent.mkdir()
    shutil.copyfile(HYPOTHESIS_SHIM, shim)
    return Target(root, shim)


def _assert_planted_bug(target: Target, stderr: str) -> None:
    assert SHIM_EXCEPTION_MARKER in stderr
    crash = parse_crash(stderr)
    assert crash is not None, stderr
    assert crash.exception_type == "IndexError"
    innermost = Path(crash.frames[-1].path)
    assert (innermost.relative_to(target.root).as_posix(), crash.frames[-1].function) == (
        "pkg/parse.py",
        "parse",
    )


@pytest.mark.parametrize("qualname", QUALNAMES)
def test_shrink_then_replay_the_minimal_example(
    target: Target, tmp_path: Path, qualname: str
) -> None:
    testcase = tmp_path / "crash-testcase"
    testcase.write_bytes(_testcase(crashes=True))
    out = tmp_path / "minimal"

    shrunk = target.run(qualname, "--shrink", testcase, out)

    assert shrunk.returncode == 77, shrunk.stderr
    assert 0 < len(out.read_bytes()) <= len(testcase.read_bytes())
    name = qualname.rsplit("::", 1)[-1]
    parsed = parse_shrink_output(shrunk.stderr)
    assert parsed.falsifying_example == f"Failing test case: {name}(\n    s='\\\\',\n)"
    assert not parsed.did_not_reproduce
    # The traceback goes without the @reproduce_failure hint the shim asked for.
    assert "reproduce_failure" not in shrunk.stderr
    _assert_planted_bug(target, shrunk.stderr)

    replayed = target.run(qualname, "--replay-choices", out)

    assert replayed.returncode == 77, replayed.stderr
    _assert_planted_bug(target, replayed.stderr)
    assert "s='\\\\'" in replayed.stderr


def test_a_passing_testcase_does_not_reproduce(target: Target, tmp_path: Path) -> None:
    testcase = tmp_path / "passing-testcase"
    testcase.write_bytes(_testcase(crashes=False))
    out = tmp_path / "minimal"

    shrunk = target.run("test_parse", "--shrink", testcase, out)

    assert shrunk.returncode == 0, shrunk.stderr
    assert parse_shrink_output(shrunk.stderr).did_not_reproduce
    assert SHIM_EXCEPTION_MARKER not in shrunk.stderr
    assert not out.exists()


@pytest.mark.parametrize("qualname", QUALNAMES)
def test_replaying_a_passing_example_does_not_reproduce(
    target: Target, tmp_path: Path, qualname: str
) -> None:
    choices = tmp_path / "choices"
    choices.write_bytes(choices_to_bytes(["a\\\\b"]))

    replayed = target.run(qualname, "--replay-choices", choices)

    assert replayed.returncode == 0, replayed.stderr
    assert DID_NOT_REPRODUCE_MARKER in replayed.stderr.splitlines()
    assert SHIM_EXCEPTION_MARKER not in replayed.stderr


def test_an_undecodable_choice_file_is_inconclusive(target: Target, tmp_path: Path) -> None:
    choices = tmp_path / "choices"
    choices.write_bytes(b"\xff" * 40)

    replayed = target.run("test_parse", "--replay-choices", choices)

    assert replayed.returncode == 3, replayed.stderr
    assert "fuzzorch shim: Hypothesis could not replay the example" in replayed.stderr
    assert SHIM_EXCEPTION_MARKER not in replayed.stderr


def test_oversized_inputs_are_refused(target: Target, tmp_path: Path) -> None:
    choices = tmp_path / "choices"
    choices.write_bytes(b"\0" * ((1 << 20) + 1))

    replayed = target.run("test_parse", "--replay-choices", choices)

    assert replayed.returncode == 3
    assert "is larger than 1048576 bytes" in replayed.stderr


def test_a_bad_command_line_shows_the_usage(target: Target, tmp_path: Path) -> None:
    result = target.run("test_parse", "--shrink", tmp_path / "only-one-path")

    assert result.returncode == 1
    assert "--shrink TESTCASE OUT" in result.stderr
