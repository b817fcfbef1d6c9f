"""Branch globs: validation, segment-wise matching, and no regex surprises."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.branchglob import branch_matches, validate_glob


@pytest.mark.parametrize(
    ("glob", "branch", "expected"),
    [
        ("release/*", "release/1.0", True),
        ("release/*", "release/", True),  # not a valid branch, but '*' may match nothing
        ("release/*", "release/1.0/x", False),
        ("release/*", "releases/1", False),
        ("release/*", "release", False),
        ("main", "main", True),
        ("main", "main2", False),
        ("main", "Main", False),
        ("main", "xmain", False),
        ("*", "main", True),
        ("*", "a/b", False),
        ("?", "a", True),
        ("?", "ab", False),
        ("?", "/", False),
        ("v?.*", "v1.2", True),
        ("v?.*", "v12.2", False),
        ("feat-*-fix", "feat--fix", True),
        ("feat-*-fix", "feat-a/b-fix", False),
        ("*-rc", "1.0-rc", True),
        ("*a*b", "xaxxbyab", True),
        ("*a*b", "xaxxbya", False),
        ("release/**", "release/1.0", True),
        ("release/**", "release/1.0/hotfix", True),
        ("release/**", "release", False),
        ("release/**", "releases/1", False),
        ("**", "main", True),
        ("**", "a/b/c", True),
        ("**/fix", "fix", True),
        ("**/fix", "a/b/fix", True),
        ("**/fix", "a/b/fix/x", False),
        ("**/fix", "prefix", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/y/c", False),
        ("a/**/b", "ab", False),
        ("a/**/**/b", "a/b", True),
        ("a/**/*/b", "a/b", False),
        ("a/**/*/b", "a/x/b", True),
        ("team/*/release/**", "team/x/release/1/2", True),
        ("team/*/release/**", "team/x/y/release/1", False),
        # Regex metacharacters allowed in globs are literal.
        ("v1.0", "v1x0", False),
        ("v1.0", "v1.0", True),
        ("a-b", "a-b", True),
    ],
)
def test_branch_matches(glob: str, branch: str, expected: bool) -> None:
    assert branch_matches(glob, branch) is expected


GOOD_GLOBS = ["main", "release/*", "release/**", "**", "**/fix", "v?.*", "a_b-c.d/e*f?"]


@pytest.mark.parametrize("glob", GOOD_GLOBS)
def test_valid_globs_are_returned_unchanged(glob: str) -> None:
    assert validate_glob(glob) == glob


@pytest.mark.parametrize(
    ("glob", "match"),
    [
        ("", "must not be empty"),
        ("a" * 256, "at most 255"),
        ("a\nb", "control"),
        ("a\x00", "control"),
        ("a\u202eb", "control"),
        ("a b", "not ' '"),
        ("-x", "must not start with '-'"),
        ("a..b", r"must not contain '\.\.'"),
        ("release/[0-9]", r"not '\[\]'"),
        ("a+b(c)", r"not '\(\)\+'"),
        ("a\\b", "not"),
        ("a{b,c}", "not"),
        ("déjà", "not"),
        ("/main", "must not start or end with '/'"),
        ("main/", "must not start or end with '/'"),
        ("a//b", "'//'"),
        ("a**", "'\\*\\*' must be a whole path segment"),
        ("***", "whole path segment"),
        ("x/**b/y", "whole path segment"),
    ],
)
def test_invalid_globs_are_refused_naming_the_glob(glob: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        validate_glob(glob)
    assert repr(glob) in str(info.value)
    with pytest.raises(ValueError, match=match):
        branch_matches(glob, "main")


def test_matching_is_not_exponential() -> None:
    # A backtracking regex takes ages on this; segment matching takes microseconds.
    glob = "*a" * 30 + "*b"
    branch = "a" * 200
    started = time.perf_counter()
    assert not branch_matches(glob, branch)
    assert not branch_matches("**/" * 60 + "b", "a/" * 500 + "c")
    assert time.perf_counter() - started < 1.0


# --- Properties ------------------------------------------------------------------------


def reference_match(glob: str, branch: str) -> bool:
    """An independent, exponential (so small inputs only) statement of the semantics."""

    def segment(pattern: str, text: str) -> bool:
        regex = "".join({"*": ".*", "?": "."}.get(ch, re.escape(ch)) for ch in pattern)
        return re.fullmatch(regex, text, re.DOTALL) is not None

    def walk(globs: list[str], parts: list[str]) -> bool:
        if not globs:
            return not parts
        first, rest = globs[0], globs[1:]
        if first == "**":
            least = 0 if rest else 1  # a trailing '**' needs at least one segment
            return any(walk(rest, parts[k:]) for k in range(least, len(parts) + 1))
        return bool(parts) and segment(first, parts[0]) and walk(rest, parts[1:])

    return walk(glob.split("/"), branch.split("/"))


small_globs = st.lists(
    st.sampled_from(["a", "b", "*", "?", "a*", "*b", "?a", "**"]), min_size=1, max_size=4
).map("/".join)
small_branches = st.text(alphabet="ab/", max_size=8)


@settings(max_examples=500, deadline=None)
@given(glob=small_globs, branch=small_branches)
def test_matching_agrees_with_a_reference_regex(glob: str, branch: str) -> None:
    validate_glob(glob)
    assert branch_matches(glob, branch) is reference_match(glob, branch)


@settings(max_examples=300, deadline=None)
@given(glob=st.sampled_from(GOOD_GLOBS) | small_globs, branch=st.text())
def test_matching_never_raises_on_arbitrary_text(glob: str, branch: str) -> None:
    assert branch_matches(glob, branch) in (True, False)


@settings(max_examples=300, deadline=None)
@given(glob=st.text(max_size=20))
def test_validation_only_ever_raises_value_error(glob: str) -> None:
    message = None
    try:
        validate_glob(glob)
    except ValueError as exc:
        message = str(exc)
    if message is None:
        assert branch_matches(glob, glob.replace("*", "x").replace("?", "y")) in (True, False)
    else:
        assert repr(glob) in message
