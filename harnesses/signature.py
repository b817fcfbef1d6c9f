"""The crash signature (DESIGN.md "Crash signature"): kind, type and three repository frames.

The canonical string is ``kind|exception_type|frame1|frame2|frame3`` and the signature is
the sha1 hex of its UTF-8. Both are stored, so changing anything here orphans crash groups.
No line numbers (a signature survives edits elsewhere in the file) and no message (messages
carry input bytes).
"""

from __future__ import annotations

import enum
import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harnesses.errors import SignatureError
from harnesses.pytraceback import Frame

#: The worker names every runner shim file ``<SHIM_FILE_PREFIX><anything>.py`` so that its
#: frames are recognised and skipped, wherever the sandbox mounts it.
SHIM_FILE_PREFIX = "_fuzzorch_shim_"

SIGNATURE_FRAMES = 3
MAX_TITLE_CHARS = 160
# Bounds what one hostile frame or type name can add to a stored canonical string.
MAX_PART_CHARS = 300

_SITE_DIRS = ("site-packages", "dist-packages")
# ``/lib/python3.11/`` (also ``python3.13t``): where CPython keeps its standard library.
_STDLIB_DIR = re.compile(r"/lib/python\d+(?:\.\d+)?[a-z]*/")
_SIGNAL_NAME = re.compile(r"SIG[A-Z0-9]{1,12}")


class CrashKind(enum.StrEnum):
    """What ended the run, as in the JSON summary's ``kind``."""

    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    OOM = "oom"
    SIGNAL = "signal"
    EXIT = "exit"


class FrameOrigin(enum.StrEnum):
    """Where a traceback frame's file lives, which decides whether it names the bug."""

    REPO = "repo"
    HARNESS = "harness"
    STDLIB = "stdlib"
    SITE_PACKAGES = "site_packages"
    SHIM = "shim"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Signature:
    """A crash's identity: its parts, the canonical string and that string's sha1 hex."""

    kind: CrashKind
    exception_type: str
    frames: tuple[str, ...]
    canonical: str
    sha1: str


def frame_id(path: str, function: str) -> str:
    """The wire form of a frame: ``relative/path.py:function``."""
    return f"{path}:{function}"


def is_shim_path(frame_path: str) -> bool:
    """Whether a traceback path is one of fuzzorch's runner shims."""
    name = frame_path.rsplit("/", 1)[-1]
    return name.startswith(SHIM_FILE_PREFIX) and name.endswith(".py")


def _normalized_roots(roots: Sequence[str]) -> list[str]:
    normalized = []
    for root in roots:
        if not root.startswith("/"):
            raise SignatureError(f"Invalid worktree root {root!r}: must be an absolute path")
        normalized.append(posixpath.normpath(root))
    return normalized


def _under_roots(path: str, roots: Sequence[str]) -> str | None:
    """The path relative to the first root containing it, or None."""
    if not path.startswith("/"):
        return None
    # normpath folds ``..`` so that ``/root/../etc/x`` is not taken for a repository file.
    path = posixpath.normpath(path)
    for root in _normalized_roots(roots):
        if root == "/":
            return path.lstrip("/") or None
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
    return None


def _after_site_dir(path: str) -> str | None:
    parts = path.split("/")
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in _SITE_DIRS:
            return "/".join(parts[index + 1 :])
    return None


def relative_path(frame_path: str, *, roots: Sequence[str]) -> str:
    """The machine-independent path of a frame's file, as the signature spells it.

    Repository files are relative to the worktree root, installed packages to their
    site-packages folder, the standard library to ``lib/pythonX.Y``, shims to their file
    name; anything else is kept as printed.
    """
    if is_shim_path(frame_path):
        return frame_path.rsplit("/", 1)[-1]
    site = _after_site_dir(frame_path)
    if site is not None:
        return site
    repo = _under_roots(frame_path, roots)
    if repo is not None:
        return repo
    stdlib = _STDLIB_DIR.search(frame_path)
    if stdlib is not None and frame_path.startswith("/"):
        return frame_path[stdlib.end() :]
    return frame_path


def _harness_relative(harness_path: str | None, roots: Sequence[str]) -> str | None:
    if not harness_path:
        return None
    if harness_path.startswith("/"):
        return _under_roots(harness_path, roots) or posixpath.normpath(harness_path)
    return posixpath.normpath(harness_path)


def classify(frame_path: str, *, roots: Sequence[str], harness_path: str | None) -> FrameOrigin:
    """Where a frame's file lives: the target repository, its harness, or something else.

    ``roots`` are the absolute worktree roots the job used (several, because the sandbox
    bind-mounts the worktree elsewhere); ``harness_path`` is the harness file, repository
    relative or absolute. A virtualenv inside the worktree still counts as site-packages.
    Relative paths are unknown unless they are the harness: the worker runs harnesses from
    a scratch directory, so a relative path says nothing about the repository.
    """
    if frame_path.startswith("<"):
        # ``<frozen importlib._bootstrap>`` is the import system; ``<string>`` is exec'd code.
        return FrameOrigin.STDLIB if frame_path.startswith("<frozen ") else FrameOrigin.UNKNOWN
    if is_shim_path(frame_path):
        return FrameOrigin.SHIM
    if _after_site_dir(frame_path) is not None:
        return FrameOrigin.SITE_PACKAGES
    harness = _harness_relative(harness_path, roots)
    if frame_path.startswith("/"):
        repo = _under_roots(frame_path, roots)
    else:
        repo = None if posixpath.normpath(frame_path) != harness else harness
    if repo is not None:
        return FrameOrigin.HARNESS if repo == harness else FrameOrigin.REPO
    if frame_path.startswith("/") and _STDLIB_DIR.search(frame_path):
        return FrameOrigin.STDLIB
    return FrameOrigin.UNKNOWN


# When no repository frame is left, the first non-empty class in this order names the
# crash: the harness (the bug is in how it drives the target), then installed packages and
# the standard library together (a crash inside a dependency), then anything unrecognised,
# and shims last (only a fuzzorch bug ends there).
_FALLBACK_ORDER: tuple[frozenset[FrameOrigin], ...] = (
    frozenset({FrameOrigin.REPO}),
    frozenset({FrameOrigin.HARNESS}),
    frozenset({FrameOrigin.SITE_PACKAGES, FrameOrigin.STDLIB}),
    frozenset({FrameOrigin.UNKNOWN}),
    frozenset({FrameOrigin.SHIM}),
)


FrameLike = Frame | tuple[str, str]


def _path_and_function(frame: FrameLike) -> tuple[str, str]:
    return (frame.path, frame.function) if isinstance(frame, Frame) else frame


def signature_frames(
    frames_outermost_first: Sequence[FrameLike],
    *,
    roots: Sequence[str],
    harness_path: str | None,
) -> tuple[str, ...]:
    """The (up to) three frame ids a signature uses, crash site first.

    Frames are ``Frame`` values or ``(path, function)`` pairs, outermost first.
    """
    pairs = [_path_and_function(f) for f in frames_outermost_first]
    origins = [
        (classify(path, roots=roots, harness_path=harness_path), path, function)
        for path, function in pairs
    ]
    for wanted in _FALLBACK_ORDER:
        picked = [(p, f) for origin, p, f in reversed(origins) if origin in wanted]
        if picked:
            return tuple(
                _part(frame_id(relative_path(path, roots=roots), function))
                for path, function in picked[:SIGNATURE_FRAMES]
            )
    return ()


def _part(text: str) -> str:
    """One canonical-string field: no separator, no control characters, bounded."""
    text = "".join(c for c in text if c.isprintable())
    return text.replace("|", "%7C")[:MAX_PART_CHARS]


def _exception_type_for(kind: CrashKind, exception_type: str) -> str:
    if kind is CrashKind.EXCEPTION:
        return _part(exception_type.strip())
    if kind is CrashKind.SIGNAL:
        name = exception_type.strip()
        if name and not _SIGNAL_NAME.fullmatch(name):
            raise SignatureError(f"Invalid signal name {exception_type!r}: expected like SIGSEGV")
        return name
    # A timeout, an OOM or an exit has no type: whatever the caller passed is not identity.
    return ""


def _kind(kind: str) -> CrashKind:
    try:
        return CrashKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in CrashKind)
        raise SignatureError(f"Invalid crash kind {kind!r}: expected one of {allowed}") from None


def crash_signature(
    kind: str,
    exception_type: str,
    frames_outermost_first: Sequence[FrameLike],
    *,
    roots: Sequence[str],
    harness_path: str | None,
) -> Signature:
    """The signature of a crash from its kind, type and traceback frames (outermost first).

    ``exception_type`` is the type as printed for ``exception``, the signal name (or empty
    when unknown) for ``signal``, and ignored for the other kinds.
    """
    crash_kind = _kind(kind)
    type_part = _exception_type_for(crash_kind, exception_type)
    frames = signature_frames(frames_outermost_first, roots=roots, harness_path=harness_path)
    padded = list(frames) + [""] * (SIGNATURE_FRAMES - len(frames))
    canonical = "|".join([crash_kind.value, type_part, *padded])
    digest = hashlib.sha1(canonical.encode("utf-8"), usedforsecurity=False).hexdigest()
    return Signature(crash_kind, type_part, frames, canonical, digest)


_KIND_WORDS = {
    CrashKind.TIMEOUT: "Timeout",
    CrashKind.OOM: "Out of memory",
    CrashKind.EXIT: "Exit",
}


def crash_title(kind: str, exception_type: str, frames: Sequence[str]) -> str:
    """A one-line title such as ``IndexError in unescape (pkg/parser.py)``, bounded."""
    crash_kind = _kind(kind)
    if crash_kind in _KIND_WORDS:
        what = _KIND_WORDS[crash_kind]
    else:
        fallback = "Signal" if crash_kind is CrashKind.SIGNAL else "Exception"
        what = exception_type.strip() or fallback
    title = what
    if frames:
        path, _, function = frames[0].rpartition(":")
        if not path:
            path, function = function, ""
        title = f"{what} in {function} ({path})" if function else f"{what} in {path}"
    title = "".join(c if c.isprintable() else " " for c in title)
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "…"
    return title
