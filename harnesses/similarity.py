"""Likely duplicates: crash groups of one repository whose signatures are similar, not equal.

Equal signatures are one group already (``harnesses.signature``); this module only decides
which *other* groups a triager should look at (DESIGN.md "Crash signature"). Two groups are
similar when they have the same kind and either share at least two frames in the same
order (not necessarily adjacent), or their frames match position by position from the crash
site: the same frame scores 1, the same function in another file or a nearly equal function
name in the same file 0.8, anything else 0, and the mean over the aligned positions must
reach 0.75. A different exception type (IndexError here, KeyError there, at the same
frames) is often the same bug, so it only lowers the score a little: it ranks such links
lower but, with these weights, never decides a link alone. Different kinds never link.

Frames are ``path:function`` ids, crash site first: the three a group stores, or a longer
list of the same class of frames. A full stack with harness or library frames would make
every crash through one harness share frames, so callers pass the signature's frames.
Everything here is bounded for hostile frame text: frames are cut to MAX_FRAME_CHARS and
only the first MAX_COMPARED_FRAMES are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harnesses.signature import SIGNATURE_FRAMES

THRESHOLD = 0.75
MAX_LINKS = 10
MAX_FRAME_CHARS = 200
MAX_COMPARED_FRAMES = 16
# Function names are cut to this for the edit distance, whose cost grows as length² / 5:
# real names are shorter, and a hostile 200-character pair would cost milliseconds each.
MAX_NAME_CHARS = 64
NEAR_FRAME = 0.8
# A function name within this share of edits of another is "nearly equal" (parse_v1/parse_v2).
MAX_NAME_EDIT_RATIO = 0.2
# A shared in-order pair of frames scores at least this, so that it always links (type
# penalty included); more shared frames raise it towards 1.
SHARED_FRAMES_FLOOR = 0.85
# Less than NEAR_FRAME - THRESHOLD, and clear of it: frames all "near" still link when the
# types differ (a file renamed between two crashes of one bug).
TYPE_PENALTY = 0.04


@dataclass(frozen=True)
class CrashShape:
    """What similarity looks at in a crash group: kind, exception type, frames (site first)."""

    kind: str
    exception_type: str | None
    frames: tuple[str, ...]


def _bounded(frames: tuple[str, ...]) -> list[str]:
    # Empty ids are padding, not frames; cutting long ids bounds every comparison below.
    return [f[:MAX_FRAME_CHARS] for f in frames[:MAX_COMPARED_FRAMES] if f]


def _within_edits(a: str, b: str, limit: int) -> bool:
    """Whether at most ``limit`` single-character edits turn ``a`` into ``b``.

    Levenshtein restricted to a band of width ``limit`` around the diagonal, after dropping
    the common prefix and suffix: O(len * limit) instead of O(len²).
    """
    if abs(len(a) - len(b)) > limit:
        return False
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start : len(a) - end], b[start : len(b) - end]
    if not a or not b:
        return max(len(a), len(b)) <= limit
    over = limit + 1
    previous = [j if j <= limit else over for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [over] * (len(b) + 1)
        current[0] = i if i <= limit else over
        low, high = max(1, i - limit), min(len(b), i + limit)
        for j in range(low, high + 1):
            substitution = previous[j - 1] + (a[i - 1] != b[j - 1])
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution, over)
        if min(current[low - 1 : high + 1]) > limit:
            return False
        previous = current
    return previous[len(b)] <= limit


def frame_similarity(a: str, b: str) -> float:
    """1 for the same frame, NEAR_FRAME for a moved function or a near-equal name, else 0."""
    a, b = a[:MAX_FRAME_CHARS], b[:MAX_FRAME_CHARS]
    if a == b:
        return 1.0
    path_a, _, function_a = a.rpartition(":")
    path_b, _, function_b = b.rpartition(":")
    if function_a and function_a == function_b:
        return NEAR_FRAME
    if path_a == path_b and function_a and function_b:
        name_a, name_b = function_a[:MAX_NAME_CHARS], function_b[:MAX_NAME_CHARS]
        limit = int(max(len(name_a), len(name_b)) * MAX_NAME_EDIT_RATIO)
        if _within_edits(name_a, name_b, limit):
            return NEAR_FRAME
    return 0.0


def _aligned_score(a: list[str], b: list[str]) -> float:
    """Mean frame similarity position by position from the crash site (missing = 0)."""
    width = min(max(len(a), len(b)), SIGNATURE_FRAMES)
    scores = [frame_similarity(x, y) for x, y in zip(a[:width], b[:width], strict=False)]
    return sum(scores) / width


def _shared_in_order(a: list[str], b: list[str]) -> int:
    """The length of the longest common subsequence of two frame lists."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def similarity(a: CrashShape, b: CrashShape) -> float:
    """How likely two crash groups are one bug, from 0 to 1; symmetric."""
    if a.kind != b.kind:
        return 0.0
    frames_a, frames_b = _bounded(a.frames), _bounded(b.frames)
    if not frames_a or not frames_b:
        return 0.0
    score = _aligned_score(frames_a, frames_b)
    shared = _shared_in_order(frames_a, frames_b)
    if shared >= 2:
        share = shared / max(len(frames_a), len(frames_b))
        score = max(score, SHARED_FRAMES_FLOOR + (1 - SHARED_FRAMES_FLOOR) * share)
    if score > 0 and (a.exception_type or "") != (b.exception_type or ""):
        score -= TYPE_PENALTY
    return max(0.0, min(1.0, score))


def likely_duplicates(a: CrashShape, b: CrashShape) -> bool:
    """Whether two crash groups should be linked as likely duplicates."""
    return similarity(a, b) >= THRESHOLD


def links(new: CrashShape, existing: Mapping[str, CrashShape]) -> list[tuple[str, float]]:
    """The existing groups to link to a new one, best first, at most MAX_LINKS.

    A shape equal to ``new`` is the same group, not a duplicate of it, and is left out.
    """
    scored = []
    for group_id, shape in existing.items():
        if shape == new:
            continue
        score = similarity(new, shape)
        if score >= THRESHOLD:
            scored.append((group_id, score))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:MAX_LINKS]
