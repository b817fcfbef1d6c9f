"""Repository-relative paths: validated before they name a file we read or run."""

from __future__ import annotations

from harnesses.errors import InvalidPathError

MAX_PATH_BYTES = 1024


def validate_repo_path(path: str) -> str:
    """Return a normalized relative POSIX path inside the repository, or raise naming it."""
    if not path or len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise InvalidPathError(
            f"Invalid path {path!r}: empty or longer than {MAX_PATH_BYTES} bytes"
        )
    if any(ord(c) < 32 or c == "\x7f" for c in path) or "\\" in path:
        raise InvalidPathError(f"Invalid path {path!r}: control characters or backslashes")
    if path.startswith("/"):
        raise InvalidPathError(f"Invalid path {path!r}: must be relative to the repository")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidPathError(f"Invalid path {path!r}: must stay inside the repository")
    return "/".join(parts)
