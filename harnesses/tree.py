"""A source tree to discover harnesses in: the files of one commit, read without running them.

Discovery sees a tree only through ``SourceTree``; the git-backed implementation lives with
the git adapter in ``workers``, and ``DirectoryTree`` reads a checked-out folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class TreeFile:
    """A file in a tree: a regular file, or a symlink with its (unresolved) target."""

    path: str
    size: int
    symlink_target: str | None = None


class SourceTree(Protocol):
    """Read-only access to the files of one commit."""

    def files(self) -> Iterator[TreeFile]:
        """Every file (and file symlink) in the tree, in any order."""
        ...

    def read(self, path: str, max_bytes: int) -> bytes:
        """The bytes of a regular file; at most ``max_bytes`` of them."""
        ...


# Folders that never hold a project's own harnesses: dependencies, environments, builds.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".eggs",
        "__pycache__",
        "node_modules",
        "site-packages",
        "build",
        "dist",
        "vendor",
        "vendored",
        "_vendor",
        "third_party",
        ".mypy_cache",
        ".pytest_cache",
        ".hypothesis",
        ".fuzzorch",
    }
)


def skipped_dir(name: str) -> bool:
    """True for a folder discovery never walks into."""
    return name in SKIPPED_DIRS or name.endswith(".egg-info")


class DirectoryTree:
    """A folder on disk as a SourceTree. Never follows a symlinked folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def files(self) -> Iterator[TreeFile]:
        """Every regular file and file symlink below the root, skipping ignored folders."""
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            base = Path(dirpath)
            # Virtualenvs are recognised by their marker file, whatever they are called.
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not skipped_dir(d)
                and not (base / d).is_symlink()
                and not (base / d / "pyvenv.cfg").exists()
            )
            for name in sorted(filenames):
                full = base / name
                rel = full.relative_to(self.root).as_posix()
                info = full.lstat()
                if stat.S_ISLNK(info.st_mode):
                    yield TreeFile(rel, info.st_size, symlink_target=os.readlink(full))
                elif stat.S_ISREG(info.st_mode):
                    yield TreeFile(rel, info.st_size)

    def read(self, path: str, max_bytes: int) -> bytes:
        """Read a regular file below the root (refusing anything that leaves it)."""
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError(f"{path!r} leaves the tree")
        with open(full, "rb") as handle:
            return handle.read(max_bytes)


class MemoryTree:
    """A tree held in a dict (path -> bytes, or ``Symlink``): for tests and generated repos."""

    def __init__(self, entries: dict[str, bytes | Symlink]) -> None:
        self.entries = dict(entries)

    def files(self) -> Iterator[TreeFile]:
        """Every entry, sorted by path."""
        for path in sorted(self.entries):
            value = self.entries[path]
            if isinstance(value, Symlink):
                yield TreeFile(path, len(value.target), symlink_target=value.target)
            else:
                yield TreeFile(path, len(value))

    def read(self, path: str, max_bytes: int) -> bytes:
        """The bytes of a regular file."""
        value = self.entries[path]
        if isinstance(value, Symlink):
            raise ValueError(f"{path!r} is a symlink")
        return value[:max_bytes]


@dataclass(frozen=True)
class Symlink:
    """A symlink entry of a MemoryTree."""

    target: str
