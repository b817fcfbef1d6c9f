"""Fixture repositories built with the real ``git`` binary, hermetic and deterministic.

``GitRepo.init(path)`` makes a non-bare repository; ``commit`` writes files (``None``
deletes one, a ``Symlink`` makes a link) and commits everything. Dates advance one minute per
commit from a fixed epoch, so shas are stable across runs. No user or system git
configuration is read.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_EPOCH = 1_700_000_000


@dataclass(frozen=True)
class Symlink:
    """A symlink to write in ``GitRepo.commit``'s ``files``."""

    target: str


Content = str | bytes | Symlink | None


def git_env(home: Path) -> dict[str, str]:
    """A minimal environment in which git reads no configuration but its repository's."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


class GitRepo:
    """A working repository for tests; every method runs real git in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ticks = 0

    @classmethod
    def init(cls, path: Path, *, branch: str = "main") -> GitRepo:
        """Create an empty repository at ``path`` whose first branch is ``branch``."""
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "--quiet", f"--initial-branch={branch}")
        return repo

    def git(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run git in the repository and return its stdout (stripped); raise on failure."""
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**git_env(self.path), **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"git {args!r} failed: {result.stderr}")
        return result.stdout.strip()

    def commit(
        self,
        files: Mapping[str, Content] | None = None,
        *,
        message: str = "change",
        author: tuple[str, str] = ("Ada Lovelace", "ada@example.com"),
    ) -> str:
        """Write ``files`` (None deletes), commit everything, and return the new sha."""
        for name, content in (files or {}).items():
            target = self.path / name
            if target.is_symlink() or target.exists():
                target.unlink()
            if content is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Symlink):
                target.symlink_to(content.target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        self.git("add", "--all")
        return self._commit(["-m", message], author)

    def _commit(self, args: list[str], author: tuple[str, str]) -> str:
        self.git("commit", "--quiet", "--allow-empty", *args, env=self._identity(author))
        return self.head()

    def _identity(self, person: tuple[str, str]) -> dict[str, str]:
        # One minute per call from a fixed epoch: the same script builds the same shas.
        self._ticks += 1
        date = f"@{_EPOCH + 60 * self._ticks} +0000"
        name, email = person
        return {
            f"GIT_{role}_{key}": value
            for role in ("AUTHOR", "COMMITTER")
            for key, value in (("NAME", name), ("EMAIL", email), ("DATE", date))
        }

    def head(self) -> str:
        """The sha HEAD points to."""
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "HEAD") -> None:
        """Create branch ``name`` at ``start`` and check it out."""
        self.git("checkout", "--quiet", "-b", name, start)

    def checkout(self, name: str) -> None:
        """Check out an existing branch."""
        self.git("checkout", "--quiet", name)

    def tag(self, name: str, target: str = "HEAD", *, message: str | None = None) -> None:
        """Tag ``target``; with a message the tag is annotated (a tag object)."""
        args = ["-a", "-m", message] if message is not None else []
        self.git("tag", *args, name, target, env=self._identity(("Tagger", "tag@example.com")))

    def merge(self, branch: str, *, message: str | None = None) -> str:
        """Merge ``branch`` into the current branch with a merge commit; return its sha."""
        merger = ("Merger", "merge@example.com")
        self.git("merge", "--quiet", "--no-ff", "--no-commit", branch, env=self._identity(merger))
        return self._commit(["-m", message or f"Merge {branch}"], merger)

    def add_submodule(self, path: str, url: str, sha: str) -> None:
        """Stage a submodule entry (a gitlink to ``sha``) and its .gitmodules; commit separately.

        Written directly into the index, so nothing is cloned: the fixture stays offline.
        """
        gitmodules = self.path / ".gitmodules"
        previous = gitmodules.read_text() if gitmodules.exists() else ""
        gitmodules.write_text(f'{previous}[submodule "{path}"]\n\tpath = {path}\n\turl = {url}\n')
        (self.path / path).mkdir(parents=True, exist_ok=True)  # an uninitialized submodule
        self.git("add", ".gitmodules")
        self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
