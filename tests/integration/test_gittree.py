"""Discovery reads the same files through git blobs as through a checked-out folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from harnesses.discovery import discover
from harnesses.tree import DirectoryTree
from tests.support import fixture_repos
from workers import gittree
from workers.git import Git
from workers.gittree import GitTree


@pytest.mark.parametrize(
    "build", [fixture_repos.oss_fuzz_style, fixture_repos.mixed_tests, fixture_repos.configured]
)
def test_git_tree_and_worktree_give_the_same_collection(
    tmp_path: Path, build: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny windows, so the batching logic is exercised across many windows.
    monkeypatch.setattr(gittree, "WINDOW_FILES", 2)
    fixture = build(tmp_path)  # type: ignore[operator]
    git = Git(allow_local=True)
    mirror = tmp_path / "mirror.git"
    git.mirror(str(fixture.path), mirror)
    for commit in fixture.commits:
        worktree = git.add_worktree(mirror, commit, tmp_path / f"wt-{commit[:8]}")
        try:
            assert discover(GitTree(git, mirror, commit)) == discover(DirectoryTree(worktree))
        finally:
            git.remove_worktree(mirror, worktree)


def test_hostile_tree_through_git(tmp_path: Path) -> None:
    fixture = fixture_repos.hostile(tmp_path, huge_bytes=2_000_000)
    git = Git(allow_local=True)
    mirror = tmp_path / "mirror.git"
    git.mirror(str(fixture.path), mirror)
    collection = discover(GitTree(git, mirror, fixture.commits[0]))
    assert collection.names() == ["fuzz_good.py"]
    assert {s.name: s.reason.value for s in collection.skipped} == {
        "fuzz/escape.py": "symlink-outside",
        "fuzz_binary.py": "not-utf8",
        "fuzz_etc.py": "symlink-outside",
        "fuzz_huge.py": "too-large",
        "fuzz_syntax.py": "syntax-error",
        "tests/test_bad.py": "syntax-error",
    }
