"""A job's workspace: the repository at the job's commit, checked out from a cached mirror.

Mirrors are shared by every job of a repository on this worker; each job gets its own
worktree, readable (never writable) by the harness uid, removed when the job ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from workers.errors import RefNotFoundError
from workers.git import Git
from workers.permissions import seal

logger = logging.getLogger(__name__)


class Workspaces:
    """Mirrors under ``root/mirrors``, job worktrees under ``root/worktrees``."""

    def __init__(self, git: Git, root: Path) -> None:
        self.git = git
        self.mirrors = root / "mirrors"
        self.worktrees = root / "worktrees"
        for folder in (root, self.mirrors, self.worktrees):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o755)

    def mirror(self, repo: str, source: str, commit: str) -> Path:
        """The repository's mirror, fetched if it does not have ``commit`` yet."""
        mirror = self.mirrors / f"{repo}.git"
        with self._lock(repo):
            if not mirror.exists():
                self.git.mirror(source, mirror)
            else:
                try:
                    self.git.resolve(mirror, commit)
                except RefNotFoundError:
                    self.git.fetch(mirror)
            self.git.resolve(mirror, commit)  # raises, naming the commit, if it is gone
        return mirror

    @contextlib.contextmanager
    def checkout(self, repo: str, source: str, commit: str, name: str) -> Iterator[Path]:
        """A worktree at ``commit`` for the duration of the block."""
        mirror = self.mirror(repo, source, commit)
        target = self.worktrees / name
        if target.exists():
            shutil.rmtree(target)
        with self._lock(repo):
            worktree = self.git.add_worktree(mirror, commit, target)
        seal(worktree)
        try:
            yield worktree
        finally:
            with self._lock(repo):
                try:
                    self.git.remove_worktree(mirror, worktree)
                except Exception:  # the job's result matters more than its clean-up
                    logger.exception("could not remove worktree %s", worktree)
                    shutil.rmtree(worktree, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self, repo: str) -> Iterator[None]:
        # git itself is not safe with two processes writing one mirror's refs or worktrees.
        with open(self.mirrors / f".{repo}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
