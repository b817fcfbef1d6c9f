"""Branch policies' globs: ``release/*``, ``feature/**``, ``main``.

``*`` matches any characters within one path segment, ``?`` one character within a segment,
and a ``**`` segment any number of whole segments: ``a/**/b`` matches ``a/b`` and
``a/x/y/b``, ``**/fix`` matches ``fix``, but a trailing ``/**`` needs at least one segment, so
``release/**`` means "anything under release/" and does not match ``release`` itself (as in
gitignore). Everything else is literal.

Matching works segment by segment with no regular expression: a branch name and its
glob both come from users, and Python's backtracking ``re`` goes exponential on globs like
``*a*a*a*a*b``; this costs at most O(len(glob) * len(branch)).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["MAX_GLOB_LENGTH", "branch_matches", "validate_glob"]

MAX_GLOB_LENGTH = 255

_ALLOWED_RE = re.compile(r"[A-Za-z0-9._/*?-]*")
_ANY_SEGMENTS = "**"


def validate_glob(glob: str) -> str:
    """Return ``glob`` if it is a valid branch glob; raise ValueError naming it otherwise."""
    reason = _glob_problem(glob)
    if reason is not None:
        raise ValueError(f"Invalid branch glob {glob!r}: {reason}")
    return glob


# In the order in which a message should name the problem.
_GLOB_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda g: not g, "a glob must not be empty"),
    (lambda g: len(g) > MAX_GLOB_LENGTH, f"a glob must be at most {MAX_GLOB_LENGTH} characters"),
    (
        lambda g: not g.isprintable(),
        "a glob must not contain control, invisible or whitespace characters",
    ),
    (lambda g: g.startswith("-"), "a glob must not start with '-'"),
    (lambda g: ".." in g, "a glob must not contain '..'"),
    # No branch has an empty segment, so such a glob could never match anything.
    (lambda g: "" in g.split("/"), "a glob must not start or end with '/' nor contain '//'"),
    (
        lambda g: any("**" in s and s != _ANY_SEGMENTS for s in g.split("/")),
        "'**' must be a whole path segment",
    ),
)


def _glob_problem(glob: str) -> str | None:
    for broken, reason in _GLOB_RULES:
        if broken(glob):
            return reason
    if not _ALLOWED_RE.fullmatch(glob):
        bad = "".join(sorted({ch for ch in glob if not _ALLOWED_RE.fullmatch(ch)}))
        return f"a glob may only contain letters, digits and '._/-*?', not {bad!r}"
    return None


def branch_matches(glob: str, branch: str) -> bool:
    """True when ``branch`` matches the branch glob ``glob`` (which must be valid)."""
    validate_glob(glob)
    pattern = glob.split("/")
    parts = branch.split("/")
    # positions: how many branch segments the glob's segments so far can have consumed.
    positions = {0}
    for index, segment in enumerate(pattern):
        if not positions:
            return False
        if segment == _ANY_SEGMENTS:
            trailing = index == len(pattern) - 1
            positions = set(range(min(positions) + trailing, len(parts) + 1))
        else:
            positions = {
                at + 1
                for at in positions
                if at < len(parts) and _segment_matches(segment, parts[at])
            }
    return len(parts) in positions


def _segment_matches(pattern: str, text: str) -> bool:
    # The classic wildcard walk: on a mismatch, let the last '*' swallow one more character.
    # Each '*' only moves forward, so the cost is O(len(pattern) * len(text)) at worst.
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]) and pattern[p] != "*":
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return pattern[p:].strip("*") == ""
