"""A commit of a mirror as a ``SourceTree``: discovery reads blobs, nothing is checked out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harnesses.tree import TreeFile
from workers.errors import GitError
from workers.git import Git, TreeEntry

# Blobs are fetched in windows: one git process per window instead of one per file.
WINDOW_FILES = 512
WINDOW_BYTES = 32 * 1024 * 1024


class GitTree:
    """The files of ``sha`` in a bare mirror, read in batches in path order."""

    def __init__(self, git: Git, mirror: Path, sha: str) -> None:
        self.git = git
        self.mirror = mirror
        self.sha = sha
        self._entries: dict[str, TreeEntry] | None = None
        self._order: list[str] = []
        self._cache: dict[str, bytes] = {}

    def _tree(self) -> dict[str, TreeEntry]:
        if self._entries is None:
            entries = [e for e in self.git.list_tree(self.mirror, self.sha) if not e.is_submodule]
            self._entries = {e.path: e for e in entries}
            self._order = sorted(self._entries)
        return self._entries

    def files(self) -> Iterator[TreeFile]:
        """Every file and symlink at the commit (submodules are never fetched nor listed)."""
        for path, entry in sorted(self._tree().items()):
            if entry.is_symlink:
                target = self._read_one(entry, 4096).decode("utf-8", "surrogateescape")
                yield TreeFile(path, entry.size or 0, symlink_target=target)
            else:
                yield TreeFile(path, entry.size or 0)

    def index(self) -> dict[str, TreeFile]:
        """The tree's files by path."""
        return {f.path: f for f in self.files()}

    def read(self, path: str, max_bytes: int) -> bytes:
        """A regular file's bytes (at most ``max_bytes``), fetching a window of files at once."""
        entry = self._tree().get(path)
        if entry is None or entry.is_symlink:
            raise GitError(f"No regular file {path!r} at commit {self.sha}")
        if path not in self._cache:
            self._fetch_window(path, max_bytes)
        return self._cache.pop(path, b"")[:max_bytes]

    def _fetch_window(self, path: str, max_bytes: int) -> None:
        # Discovery reads in sorted order: prefetch the next files of the same kind.
        start = self._order.index(path)
        suffix = path.rsplit(".", 1)[-1] if "." in path else ""
        window: list[TreeEntry] = []
        total = 0
        for candidate in self._order[start:]:
            entry = self._tree()[candidate]
            if candidate != path and (
                entry.is_symlink
                or not candidate.endswith(suffix)
                or (entry.size or 0) > max_bytes
                or candidate in self._cache
            ):
                continue
            if window and (len(window) >= WINDOW_FILES or total + (entry.size or 0) > WINDOW_BYTES):
                break
            window.append(entry)
            total += entry.size or 0
        blobs = self.git.read_blobs(self.mirror, [e.oid for e in window], max_bytes=total + 1)
        for entry in window:
            self._cache[entry.path] = blobs[entry.oid]

    def _read_one(self, entry: TreeEntry, max_bytes: int) -> bytes:
        return self.git.read_blobs(self.mirror, [entry.oid], max_bytes=max_bytes)[entry.oid]
