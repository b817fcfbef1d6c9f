"""Similar-signature links: which crash groups are likely duplicates of one another."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.similarity import (
    MAX_LINKS,
    THRESHOLD,
    CrashShape,
    frame_similarity,
    likely_duplicates,
    links,
    similarity,
)

UNESCAPE = "pkg/parser.py:unescape"
PARSE = "pkg/parser.py:parse"
LOAD = "pkg/api.py:load"


def shape(*frames: str, kind: str = "exception", exception_type: str | None = "E") -> CrashShape:
    return CrashShape(kind, exception_type, frames)


@pytest.mark.parametrize(
    ("a", "b", "linked"),
    [
        pytest.param(
            shape(UNESCAPE, PARSE, LOAD, exception_type="IndexError"),
            shape(UNESCAPE, PARSE, LOAD, exception_type="KeyError"),
            True,
            id="same-frames-different-type",
        ),
        pytest.param(
            shape(UNESCAPE, PARSE, LOAD),
            shape(UNESCAPE, "pkg/other.py:run", "pkg/other.py:main"),
            False,
            id="one-shared-frame",
        ),
        pytest.param(
            shape(UNESCAPE, PARSE, LOAD),
            shape(UNESCAPE, "pkg/parsing.py:parse", "pkg/loader.py:load"),
            True,
            id="one-shared-frame-and-the-others-moved",
        ),
        pytest.param(
            shape("pkg/parser.py:parse_v1", PARSE),
            shape("pkg/parser.py:parse_v2", "pkg/x.py:y"),
            False,
            id="near-names-but-one-frame-unrelated",
        ),
        pytest.param(
            shape("pkg/parser.py:parse_v1"),
            shape("pkg/parser.py:parse_v2"),
            True,
            id="function-renamed-by-one-character",
        ),
        pytest.param(
            shape("pkg/parser.py:unescape"),
            shape("pkg/parser.py:unquote"),
            False,
            id="different-functions-in-one-file",
        ),
        pytest.param(
            shape(UNESCAPE, "pkg/a.py:f", PARSE),
            shape(UNESCAPE, PARSE, "pkg/b.py:g"),
            True,
            id="two-shared-frames-in-order-not-adjacent",
        ),
        pytest.param(
            shape("pkg/a.py:f", UNESCAPE, PARSE),
            shape("pkg/b.py:g", UNESCAPE, PARSE),
            True,
            id="two-shared-frames-below-a-different-site",
        ),
        pytest.param(
            shape(UNESCAPE, PARSE),
            shape(PARSE, UNESCAPE),
            False,
            id="reordered-frames",
        ),
        pytest.param(
            shape(UNESCAPE, PARSE, LOAD, kind="exception"),
            shape(UNESCAPE, PARSE, LOAD, kind="timeout", exception_type=None),
            False,
            id="different-kinds",
        ),
        pytest.param(
            shape(UNESCAPE, PARSE, kind="signal", exception_type="SIGSEGV"),
            shape(UNESCAPE, PARSE, kind="signal", exception_type="SIGBUS"),
            True,
            id="same-frames-different-signal",
        ),
        pytest.param(shape(), shape(), False, id="no-frames"),
        pytest.param(shape("", ""), shape("", ""), False, id="padding-only"),
        pytest.param(shape(UNESCAPE), shape(), False, id="one-side-without-frames"),
    ],
)
def test_hand_cases(a: CrashShape, b: CrashShape, linked: bool) -> None:
    assert likely_duplicates(a, b) is linked
    assert likely_duplicates(b, a) is linked


def test_a_different_type_lowers_the_score_a_little() -> None:
    same = similarity(shape(UNESCAPE, PARSE, exception_type="IndexError"), shape(UNESCAPE, PARSE))
    both = similarity(shape(UNESCAPE, PARSE), shape(UNESCAPE, PARSE))
    assert both == 1.0
    assert THRESHOLD < same < both


def test_a_missing_type_counts_as_empty() -> None:
    assert similarity(shape(UNESCAPE, exception_type=None), shape(UNESCAPE, exception_type="")) == 1


def test_different_kinds_never_link_whatever_the_frames() -> None:
    assert similarity(shape(UNESCAPE, kind="oom"), shape(UNESCAPE, kind="timeout")) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [
        (UNESCAPE, UNESCAPE, 1.0),
        ("pkg/a.py:parse", "pkg/b.py:parse", 0.8),
        ("pkg/a.py:parse_v1", "pkg/a.py:parse_v2", 0.8),
        ("pkg/a.py:parse_v1", "pkg/b.py:parse_v2", 0.0),
        ("pkg/a.py:", "pkg/b.py:", 0.0),
        ("pkg/a.py:x", "pkg/a.py:y", 0.0),
        ("no-colon", "no-colon-either", 0.0),
    ],
)
def test_frame_similarity(a: str, b: str, score: float) -> None:
    assert frame_similarity(a, b) == score
    assert frame_similarity(b, a) == score


def test_links_are_the_best_ten_above_the_threshold() -> None:
    new = shape(UNESCAPE, PARSE, LOAD, exception_type="IndexError")
    existing = {
        "equal": new,
        "type": shape(UNESCAPE, PARSE, LOAD, exception_type="KeyError"),
        "pair": shape(UNESCAPE, "pkg/z.py:z", PARSE, exception_type="IndexError"),
        "kind": shape(UNESCAPE, PARSE, LOAD, kind="timeout"),
        "far": shape("pkg/z.py:z", exception_type="IndexError"),
        **{f"many{n:02}": shape(UNESCAPE, f"pkg/m{n}.py:m", PARSE) for n in range(20)},
    }
    found = links(new, existing)
    assert len(found) == MAX_LINKS
    assert found[0][0] == "type"
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)
    assert all(score >= THRESHOLD for _, score in found)
    ids = {group_id for group_id, _ in found}
    assert not ids & {"equal", "kind", "far"}
    assert links(new, {}) == []


FRAMES = [UNESCAPE, PARSE, LOAD, "pkg/parser.py:parse_v2", "pkg/other.py:parse", "x:y", ""]
frames = st.lists(st.sampled_from(FRAMES) | st.text(max_size=30), max_size=6).map(tuple)
shapes = st.builds(
    CrashShape,
    kind=st.sampled_from(["exception", "timeout", "signal"]),
    exception_type=st.none() | st.sampled_from(["", "IndexError", "KeyError"]),
    frames=frames,
)


@settings(max_examples=500, deadline=None)
@given(shapes, shapes)
def test_similarity_is_symmetric_and_in_range(a: CrashShape, b: CrashShape) -> None:
    score = similarity(a, b)
    assert score == similarity(b, a)
    assert 0.0 <= score <= 1.0
    assert likely_duplicates(a, b) is (score >= THRESHOLD)
    if a.kind != b.kind or not any(a.frames) or not any(b.frames):
        assert score == 0.0


@settings(max_examples=200, deadline=None)
@given(shapes)
def test_a_shape_is_fully_similar_to_itself(a: CrashShape) -> None:
    assert similarity(a, a) == (1.0 if any(a.frames) else 0.0)


@settings(max_examples=100, deadline=None)
@given(shapes, st.dictionaries(st.text(max_size=5), shapes, max_size=30))
def test_links_are_bounded_sorted_and_exclude_the_same_group(
    new: CrashShape, existing: dict[str, CrashShape]
) -> None:
    found = links(new, existing)
    assert len(found) <= MAX_LINKS
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    for group_id, score in found:
        assert existing[group_id] != new
        assert score == similarity(new, existing[group_id]) >= THRESHOLD


def test_hostile_frames_stay_bounded_in_time() -> None:
    huge = "pkg/a.py:" + "f" * 1_000_000
    control = "pkg/\x00\x1b[31m.py:\r\n" + "\x07" * 10_000
    # Long names in one file that are neither equal nor far apart in length are the
    # costliest edit-distance case: random strings over two letters.
    rng = random.Random(0)
    left, right = ("pkg/a.py:" + "".join(rng.choices("ab", k=190)) for _ in range(2))
    hostile = [
        shape(huge, huge, huge),
        shape(control, huge, left, exception_type="\x00" * 100_000),
        shape(*([left] * 100_000)),
        shape(right, left, right),
        shape(*(f"pkg/a.py:{'q' * 199}{n}" for n in range(1000))),
    ]
    existing = {str(n): hostile[n % len(hostile)] for n in range(500)}
    started = time.monotonic()
    for new in hostile:
        links(new, existing)
    assert time.monotonic() - started < 10
    assert likely_duplicates(shape(huge), shape(huge + "g"))  # equal in the compared prefix
