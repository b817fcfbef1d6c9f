"""``workers.git`` against the real git binary, on fixture repositories built in tmp dirs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import workers.git
from tests.support.gitrepo import GitRepo, Symlink
from workers.errors import GitError, GitTimeoutError, InvalidRefError, InvalidSourceError
from workers.git import BlameLine, CommitInfo, Git, TreeEntry
from workers.gitproc import tidy_stderr

A_V1 = "one\ntwo\nthree\n"
A_V2 = "one\nTWO\nthree\n"


@dataclass(frozen=True)
class History:
    """The fixture repository and the shas of its commits.

    main:     c1 ─ c2 ─────── c3 ─ merge
                     └ f1 ─ f2 ──┘        (feature, merged with --no-ff)
    """

    repo: GitRepo
    sub: str
    c1: str
    c2: str
    f1: str
    f2: str
    c3: str
    merge: str


@pytest.fixture
def history(tmp_path: Path) -> History:
    sub = GitRepo.init(tmp_path / "sub")
    sub_sha = sub.commit({"s.txt": "submodule content"})
    repo = GitRepo.init(tmp_path / "src")
    c1 = repo.commit(
        {"a.txt": A_V1, "link": Symlink("a.txt"), "pkg/mod.py": "x = 1\n"}, message="first"
    )
    repo.add_submodule("vendor/sub", str(tmp_path / "sub"), sub_sha)
    c2 = repo.commit({"a.txt": A_V2}, message="second", author=("Bob", "bob@example.com"))
    repo.tag("v1", c1, message="release 1")
    repo.tag("light", c2)
    repo.branch("feature")
    f1 = repo.commit({"f.txt": "f1"}, message="feature one")
    f2 = repo.commit({"f.txt": "f2"}, message="feature two")
    repo.checkout("main")
    c3 = repo.commit({"c3.txt": "c3"}, message="third")
    merge = repo.merge("feature")
    return History(repo, sub_sha, c1, c2, f1, f2, c3, merge)


@pytest.fixture
def git() -> Git:
    return Git(allow_local=True, timeout=30, network_timeout=5)


@pytest.fixture
def mirror(git: Git, history: History, tmp_path: Path) -> Path:
    dest = tmp_path / "cache" / "src.git"
    git.mirror(str(history.repo.path), dest)
    return dest


# -- mirrors ---------------------------------------------------------------------------------


def test_mirror_then_mirror_again_fetches_new_commits_and_prunes(
    git: Git, history: History, mirror: Path
) -> None:
    assert (mirror / "HEAD").is_file()
    assert not (mirror / "hooks").exists()  # no template: nothing to run, even by mistake
    # A local source goes through the transport (--no-local): no files shared with it.
    assert all(f.stat().st_nlink == 1 for f in (mirror / "objects").rglob("*") if f.is_file())
    assert git.resolve(mirror, "main") == history.merge
    assert git.branches(mirror) == ["feature", "main"]

    newer = history.repo.commit({"new.txt": "new"}, message="fourth")
    history.repo.git("branch", "-D", "feature")
    git.mirror(str(history.repo.path), mirror)
    assert git.resolve(mirror, "main") == newer
    assert git.branches(mirror) == ["main"]

    newest = history.repo.commit({"new.txt": "newer"}, message="fifth")
    git.fetch(mirror)
    assert git.resolve(mirror, "main") == newest


def test_fetch_follows_a_changed_default_branch(git: Git, history: History, mirror: Path) -> None:
    assert git.default_branch(mirror) == "main"
    history.repo.branch("dev")
    git.fetch(mirror)
    assert git.default_branch(mirror) == "dev"


def test_local_source_refused_without_allow_local(history: History, tmp_path: Path) -> None:
    source = str(history.repo.path)
    dest = tmp_path / "refused.git"
    with pytest.raises(InvalidSourceError, match="allow_local is off") as info:
        Git().mirror(source, dest)
    assert repr(source) in str(info.value)
    assert not dest.exists()


def test_existing_local_mirror_is_not_fetched_without_allow_local(mirror: Path) -> None:
    with pytest.raises(InvalidSourceError, match="refused origin"):
        Git().fetch(mirror)


def test_mirror_refuses_a_dest_holding_another_source(
    git: Git, mirror: Path, tmp_path: Path
) -> None:
    other = GitRepo.init(tmp_path / "other")
    other.commit({"x": "x"})
    with pytest.raises(GitError, match="holds") as info:
        git.mirror(str(other.path), mirror)
    assert repr(str(other.path)) in str(info.value)


def test_failed_clone_leaves_nothing(git: Git, tmp_path: Path) -> None:
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    cache = tmp_path / "cache"
    with pytest.raises(GitError, match="git clone of") as info:
        git.mirror(str(not_a_repo), cache / "plain.git")
    assert repr(str(not_a_repo)) in str(info.value)
    assert list(cache.iterdir()) == []


# -- refs and history ------------------------------------------------------------------------


def test_resolve_branches_tags_and_shas(git: Git, history: History, mirror: Path) -> None:
    assert git.resolve(mirror, "main") == history.merge
    assert git.resolve(mirror, "HEAD") == history.merge
    assert git.resolve(mirror, "refs/heads/feature") == history.f2
    assert git.resolve(mirror, "v1") == history.c1  # annotated: peeled to the commit
    assert git.resolve(mirror, "light") == history.c2
    assert git.resolve(mirror, history.f1) == history.f1
    assert git.resolve(mirror, history.f1.upper()) == history.f1


@pytest.mark.parametrize("ref", ["nope", "feature/nope", "f" * 40])
def test_resolve_unknown_ref_names_it(git: Git, mirror: Path, ref: str) -> None:
    with pytest.raises(GitError, match="Unknown ref") as info:
        git.resolve(mirror, ref)
    assert repr(ref) in str(info.value)


@pytest.mark.parametrize("ref", ["-x", "--output=/tmp/x", "main~1", "main^{tree}", "@{-1}"])
def test_resolve_refuses_revision_syntax_before_git(git: Git, mirror: Path, ref: str) -> None:
    with pytest.raises(InvalidRefError, match=re.escape(f"Invalid ref {ref!r}")):
        git.resolve(mirror, ref)


def test_first_parent_history_skips_merged_side_commits(
    git: Git, history: History, mirror: Path
) -> None:
    h = history
    assert git.first_parent_history(mirror, "main") == [h.merge, h.c3, h.c2, h.c1]
    assert git.first_parent_history(mirror, h.merge, h.c1) == [h.merge, h.c3, h.c2]
    assert git.first_parent_history(mirror, "main", limit=2) == [h.merge, h.c3]
    assert git.first_parent_history(mirror, "main", "main") == []


def test_is_ancestor(git: Git, history: History, mirror: Path) -> None:
    assert git.is_ancestor(mirror, history.f1, history.merge)
    assert git.is_ancestor(mirror, history.c1, "main")
    assert git.is_ancestor(mirror, history.c2, history.c2)
    assert not git.is_ancestor(mirror, history.merge, history.c1)
    assert not git.is_ancestor(mirror, history.c3, history.f2)


def test_commit_info(git: Git, history: History, mirror: Path) -> None:
    info = git.commit_info(mirror, history.c2)
    assert info == CommitInfo(
        sha=history.c2,
        parents=(history.c1,),
        author="Bob",
        author_email="bob@example.com",
        date="2023-11-14T22:15:20+00:00",
        summary="second",
    )
    assert git.commit_info(mirror, history.merge).parents == (history.c3, history.f2)


def test_blame_names_the_commit_that_changed_the_line(
    git: Git, history: History, mirror: Path
) -> None:
    changed = git.blame_line(mirror, history.merge, "a.txt", 2)
    assert changed == BlameLine(
        commit=history.c2,
        path="a.txt",
        line=2,
        author="Bob",
        author_email="bob@example.com",
        date="2023-11-14T22:15:20+00:00",
        summary="second",
    )
    untouched = git.blame_line(mirror, history.merge, "a.txt", 3)
    assert (untouched.commit, untouched.author) == (history.c1, "Ada Lovelace")
    with pytest.raises(GitError, match=r"'a\.txt' line 9"):
        git.blame_line(mirror, history.merge, "a.txt", 9)


# -- files -----------------------------------------------------------------------------------


def test_read_file(git: Git, history: History, mirror: Path) -> None:
    assert git.read_file(mirror, history.c1, "a.txt", max_bytes=100) == A_V1.encode()
    assert git.read_file(mirror, history.c2, "a.txt", max_bytes=len(A_V2)) == A_V2.encode()
    assert git.read_file(mirror, history.c2, "pkg/mod.py", max_bytes=100) == b"x = 1\n"
    assert git.read_file(mirror, history.c2, "link", max_bytes=100) == b"a.txt"


@pytest.mark.parametrize(
    ("path", "max_bytes", "fragment"),
    [
        ("missing.txt", 100, "No file 'missing.txt'"),
        ("pkg/missing.py", 100, "No file 'pkg/missing.py'"),
        ("a.txt", 5, "File 'a.txt' at commit"),
        ("pkg", 100, "Path 'pkg' at commit"),
        ("vendor/sub", 100, "Path 'vendor/sub' at commit"),
        ("p*", 100, "No file 'p*'"),  # pathspecs are literal: no glob
        ("../a.txt", 100, "Invalid path '../a.txt'"),
        ("/a.txt", 100, "Invalid path '/a.txt'"),
        ("a\x00.txt", 100, "Invalid path 'a\\x00.txt'"),
    ],
)
def test_read_file_errors_name_the_path(
    git: Git, history: History, mirror: Path, path: str, max_bytes: int, *, fragment: str
) -> None:
    with pytest.raises(GitError) as info:
        git.read_file(mirror, history.c2, path, max_bytes=max_bytes)
    assert fragment in str(info.value)


def test_list_tree_reports_symlinks_and_submodules(
    git: Git, history: History, mirror: Path
) -> None:
    entries = {e.path: e for e in git.list_tree(mirror, history.c2)}
    assert sorted(entries) == [".gitmodules", "a.txt", "link", "pkg/mod.py", "vendor/sub"]
    oid = {path: entry.oid for path, entry in entries.items()}
    assert entries["a.txt"] == TreeEntry("a.txt", "100644", len(A_V2), False, False, oid["a.txt"])
    assert entries["link"] == TreeEntry("link", "120000", len("a.txt"), True, False, oid["link"])
    assert entries["vendor/sub"] == TreeEntry(
        "vendor/sub", "160000", None, False, True, oid["vendor/sub"]
    )
    # Object ids let many blobs be read in one git process.
    blobs = git.read_blobs(mirror, [oid["a.txt"], oid["link"]], max_bytes=1000)
    assert blobs == {oid["a.txt"]: A_V2.encode(), oid["link"]: b"a.txt"}


def test_commit_level_calls_refuse_non_shas(git: Git, mirror: Path) -> None:
    for call in (
        lambda: git.commit_info(mirror, "main"),
        lambda: git.list_tree(mirror, "-r"),
        lambda: git.read_file(mirror, "HEAD", "a.txt", max_bytes=10),
        lambda: git.blame_line(mirror, "--since=x", "a.txt", 1),
    ):
        with pytest.raises(InvalidRefError, match="must be 40 lowercase hex digits"):
            call()


# -- worktrees -------------------------------------------------------------------------------


def test_worktree_at_a_sha_without_submodules_or_hooks(
    git: Git, history: History, mirror: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    hook = mirror / "hooks" / "post-checkout"
    hook.parent.mkdir()
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)

    dest = git.add_worktree(mirror, history.c2, tmp_path / "work" / "wt")
    assert dest == tmp_path / "work" / "wt"
    assert (dest / "a.txt").read_text() == A_V2
    assert (dest / "link").is_symlink()
    assert os.readlink(dest / "link") == "a.txt"
    assert (dest / "vendor" / "sub").is_dir()
    assert list((dest / "vendor" / "sub").iterdir()) == []  # the submodule was not fetched
    assert not (mirror / "modules").exists()
    assert not marker.exists()
    assert history.repo.git("-C", str(dest), "rev-parse", "HEAD") == history.c2

    (dest / "untracked.txt").write_text("left by a build")
    git.remove_worktree(mirror, dest)
    assert not dest.exists()
    assert not (mirror / "worktrees").exists() or not any((mirror / "worktrees").iterdir())
    git.remove_worktree(mirror, dest)  # idempotent


def test_stale_worktree_registration_is_pruned(
    git: Git, history: History, mirror: Path, tmp_path: Path
) -> None:
    dest = git.add_worktree(mirror, history.c1, tmp_path / "wt")
    subprocess.run(["rm", "-rf", str(dest)], check=True)
    again = git.add_worktree(mirror, history.c1, tmp_path / "wt")  # same path, re-registered
    assert (again / "a.txt").read_text() == A_V1
    git.remove_worktree(mirror, again)
    assert not again.exists()


def test_worktree_refusals(git: Git, history: History, mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRefError, match="'main'"):
        git.add_worktree(mirror, "main", tmp_path / "wt")
    busy = tmp_path / "busy"
    busy.mkdir()
    with pytest.raises(GitError, match="already exists"):
        git.add_worktree(mirror, history.c1, busy)
    with pytest.raises(GitError, match="is not a worktree of mirror"):
        git.remove_worktree(mirror, busy)
    assert busy.exists()


# -- hostile sources and the network ---------------------------------------------------------


def _hostile_sources(target: Path) -> list[str]:
    return [
        f"--upload-pack=touch {target}/x",
        f"ext::sh -c touch% {target}/x",
        f"ssh://-oProxyCommand=touch%20{target}/x/repo",
    ]


@pytest.mark.parametrize("allow_local", [False, True])
@pytest.mark.parametrize("index", range(3))
def test_hostile_sources_are_refused_and_run_nothing(
    tmp_path: Path, allow_local: bool, index: int
) -> None:
    target = tmp_path / "pwned"
    target.mkdir()
    source = _hostile_sources(target)[index]
    with pytest.raises(InvalidSourceError) as info:
        Git(allow_local=allow_local).mirror(source, tmp_path / "m.git")
    assert repr(source) in str(info.value)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "m.git").exists()


@pytest.mark.parametrize("index", range(3))
def test_git_config_refuses_hostile_sources_even_unvalidated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    # Defense in depth: with validation switched off, protocol.allow=never,
    # --end-of-options and git's own checks still stop each of them.
    target = tmp_path / "pwned"
    target.mkdir()
    monkeypatch.setattr(workers.git, "canonical_source", lambda source, allow_local: source)
    with pytest.raises(GitError):
        Git(allow_local=True, network_timeout=5).mirror(
            _hostile_sources(target)[index], tmp_path / "m.git"
        )
    assert list(target.iterdir()) == []


def test_unreachable_url_fails_fast(tmp_path: Path) -> None:
    url = "https://127.0.0.1:1/x.git"
    started = time.monotonic()
    with pytest.raises(GitError) as info:
        Git(network_timeout=5).mirror(url, tmp_path / "m.git")
    assert time.monotonic() - started < 5
    assert not isinstance(info.value, GitTimeoutError)
    assert f"git clone of {url!r} failed" in str(info.value)
    assert "127.0.0.1" in str(info.value).split("failed", 1)[1]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback TCP server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + 15  # stops by itself even if the test hangs
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
        for conn in accepted:
            conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.parametrize("scheme", ["https", "ssh"])
def test_silent_server_times_out(silent_server: int, tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{silent_server}/x.git"
    started = time.monotonic()
    with pytest.raises(GitTimeoutError, match="no progress for 2 s") as info:
        Git(network_timeout=2).mirror(url, tmp_path / "m.git")
    assert 1.5 < time.monotonic() - started < 6
    assert repr(url) in str(info.value)
    assert info.value.transient
    assert list(tmp_path.iterdir()) == []


def test_total_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    fake_git = tmp_path / "fake-git"
    fake_git.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {pid_file}\nwait\n")
    fake_git.chmod(0o755)
    (tmp_path / "m.git").mkdir()
    git = Git(timeout=0.5, git_binary=str(fake_git))
    started = time.monotonic()
    with pytest.raises(GitTimeoutError, match=r"did not finish within 0\.5 s"):
        git.branches(tmp_path / "m.git")
    assert time.monotonic() - started < 3
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a killed orphan may linger as a zombie until init reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_missing_git_binary(tmp_path: Path) -> None:
    (tmp_path / "m.git").mkdir()
    with pytest.raises(GitError, match="Cannot run '/nonexistent/git'"):
        Git(git_binary="/nonexistent/git").branches(tmp_path / "m.git")


def test_stderr_is_bounded_and_masks_url_credentials() -> None:
    raw = b"Receiving objects:  50% (1/2)\r" + b"x" * 5000 + b"\nfatal: https://u:p@h/x failed\n"
    text = tidy_stderr(raw)
    assert "Receiving objects" not in text
    assert "u:p@" not in text
    assert text.endswith("fatal: https://***@h/x failed")
    assert len(text) <= 2001
