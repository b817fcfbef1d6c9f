"""The only module in fuzzorch that runs ``git``: mirrors, worktrees and read-only queries.

Sources and refs are hostile (see DESIGN.md, "Security model"). Every value is validated in
``workers.gitrefs`` before it reaches git, every command is a fixed argv (never a shell), and
every run carries configuration that makes git refuse what validation might have missed:
``protocol.allow=never`` except https/ssh (and file when local sources are allowed), no hooks,
no submodules, no credential helpers or prompts, no system or global configuration, no
replace refs, literal pathspecs, and a minimal environment.

Time bounds: a network operation is killed after ``network_timeout`` seconds without any
output (git runs with ``--progress``, so a healthy transfer talks every second) and every
operation after ``timeout`` seconds in total. Both raise ``GitTimeoutError``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from workers.errors import GitError, GitTimeoutError, InvalidSourceError, RefNotFoundError
from workers.gitproc import (
    BlameLine,
    CommitInfo,
    Entry,
    Expired,
    Result,
    TooLarge,
    TreeEntry,
    communicate,
    parse_blame,
    parse_cat_file_batch,
    parse_ls_tree_record,
    tidy_stderr,
)
from workers.gitrefs import (
    canonical_source,
    is_local_source,
    repo_name_from_source,
    validate_path,
    validate_ref,
    validate_rev,
    validate_sha,
)

__all__ = [
    "BlameLine",
    "CommitInfo",
    "CommitSpec",
    "Git",
    "TreeEntry",
    "canonical_source",
    "repo_name_from_source",
    "validate_path",
    "validate_ref",
    "validate_sha",
]

logger = logging.getLogger(__name__)

# Nothing can be read from or written to HOME: no ~/.netrc credentials for curl, no
# ~/.config/git. (ssh finds its keys through the passwd entry, not through HOME.)
_HARMLESS_HOME = "/nonexistent"
_SHA_LINE = re.compile(rb"[0-9a-f]{40}")
_COMMIT_FORMAT = "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%s"
# What curl and ssh print when they give up waiting: a stall, not a refusal.
_STALL_MESSAGES = re.compile(r"(?i)operation too slow|timed out|timeout was reached")


@dataclass(frozen=True)
class CommitSpec:
    """One commit of a scripted history (see ``Git.build_repository``)."""

    branch: str
    message: str
    files: Mapping[str, bytes | None] = field(default_factory=dict)
    author: tuple[str, str] = ("fuzzorch", "fuzzorch@example.invalid")
    timestamp: int = 1_700_000_000
    start_from: str | None = None


class Git:
    """Hardened git operations on bare ``--mirror`` clones kept in a local cache."""

    def __init__(
        self,
        *,
        allow_local: bool = False,
        timeout: float = 600.0,
        network_timeout: float = 60.0,
        git_binary: str = "git",
    ) -> None:
        if not timeout > 0 or not network_timeout > 0:
            raise ValueError(
                f"timeouts must be positive, got timeout={timeout!r}, "
                f"network_timeout={network_timeout!r}"
            )
        if not git_binary:
            raise ValueError(f"git_binary must not be empty, got {git_binary!r}")
        self._allow_local = allow_local
        self._timeout = float(timeout)
        self._network_timeout = float(network_timeout)
        self._git = git_binary
        stall = max(1, math.ceil(network_timeout))
        protocols = ["https", "ssh", *(["file"] if allow_local else [])]
        config = {
            "protocol.allow": "never",
            **{f"protocol.{name}.allow": "always" for name in protocols},
            "core.hooksPath": os.devnull,
            "core.fsmonitor": "false",
            "core.useReplaceRefs": "false",
            "core.askPass": "",
            "credential.helper": "",
            "transfer.credentialsInUrl": "die",
            "submodule.recurse": "false",
            "fetch.recurseSubmodules": "false",
            "http.lowSpeedLimit": "1",
            "http.lowSpeedTime": str(stall),
            # Authors as recorded in the commit: a bare repo would otherwise read the
            # target's HEAD:.mailmap.
            "mailmap.blob": "",
            # A detached gc would outlive our process group and our time bounds.
            "gc.autoDetach": "false",
            "maintenance.autoDetach": "false",
            "advice.detachedHead": "false",
        }
        self._config = [arg for key, value in config.items() for arg in ("-c", f"{key}={value}")]
        self._env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": _HARMLESS_HOME,
            "LANG": "C",
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ATTR_NOSYSTEM": "1",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "SSH_ASKPASS_REQUIRE": "never",
            "GIT_SSH_COMMAND": f"ssh -o BatchMode=yes -o ConnectTimeout={stall}",
            "GIT_ALLOW_PROTOCOL": ":".join(protocols),
            "GIT_NO_REPLACE_OBJECTS": "1",
            "GIT_LITERAL_PATHSPECS": "1",
        }

    # -- mirrors ---------------------------------------------------------------------------

    def mirror(self, source: str, dest: Path) -> None:
        """Clone ``source`` as a bare mirror at ``dest``, or fetch into it if it exists."""
        canonical = canonical_source(source, allow_local=self._allow_local)
        dest = Path(dest).absolute()
        if dest.exists():
            stored = self._origin(dest)
            if stored != canonical:
                raise GitError(f"Mirror {str(dest)!r} holds {stored!r}, not {canonical!r}")
            self._fetch(dest, stored)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Clone next to dest and rename: a failed or killed clone never looks like a mirror.
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        try:
            local = ["--no-local", "--no-hardlinks"] if is_local_source(canonical) else []
            args = ["clone", "--mirror", "--progress", "--template=", *local]
            logger.info("git: cloning %s into %s", canonical, dest)
            self._run(
                [*args, "--end-of-options", canonical, str(tmp)],
                purpose="clone",
                subject=canonical,
                network=True,
            )
            try:
                tmp.rename(dest)
            except OSError as exc:  # another process made dest meanwhile
                raise GitError(
                    f"Cannot move the clone of {canonical!r} to {str(dest)!r}: {exc}"
                ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def fetch(self, mirror: Path) -> None:
        """Fetch every ref of a mirror from its origin, pruning refs deleted there."""
        mirror = self._mirror_dir(mirror)
        self._fetch(mirror, self._origin(mirror))

    def _fetch(self, mirror: Path, source: str) -> None:
        logger.info("git: fetching %s into %s", source, mirror)
        fetch = ["fetch", "--prune", "--progress", "--no-auto-maintenance"]
        self._run(
            [*fetch, "--end-of-options", "origin"],
            purpose="fetch",
            subject=source,
            mirror=mirror,
            network=True,
        )
        self._follow_remote_head(mirror, source)
        # Outside the network bound: repacking is silent and may take a while.
        self._local(mirror, ["gc", "--auto", "--quiet"], "gc")

    def _follow_remote_head(self, mirror: Path, source: str) -> None:
        # A mirror's HEAD is set once by clone; follow a renamed default branch on fetch.
        result = self._run(
            ["ls-remote", "--symref", "--end-of-options", "origin", "HEAD"],
            purpose="ls-remote",
            subject=source,
            mirror=mirror,
            network=True,
        )
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            target, _, name = line.removeprefix("ref: ").partition("\t")
            if not line.startswith("ref: ") or name != "HEAD":
                continue
            if not target.startswith("refs/heads/") or _valid_ref_or_none(target) is None:
                logger.warning("git: ignoring remote HEAD %r of %s", target, source)
                return
            if target.removeprefix("refs/heads/") in self.branches(mirror):
                self._local(
                    mirror, ["symbolic-ref", "--end-of-options", "HEAD", target], "set HEAD"
                )
            return

    def _origin(self, mirror: Path) -> str:
        mirror = self._mirror_dir(mirror)
        result = self._local(
            mirror, ["config", "--get", "remote.origin.url"], "read origin", ok=(0, 1)
        )
        if result.returncode != 0:
            raise GitError(f"{str(mirror)!r} is not a mirror: it has no origin")
        url = result.stdout.decode("utf-8", "surrogateescape").strip()
        try:
            # Re-validated: the policy (allow_local) may differ from the one that cloned it.
            return canonical_source(url, allow_local=self._allow_local)
        except InvalidSourceError as exc:
            raise InvalidSourceError(f"Mirror {str(mirror)!r} has a refused origin: {exc}") from exc

    # -- refs and history ------------------------------------------------------------------

    def default_branch(self, mirror: Path) -> str:
        """Return the name of the branch the mirror's HEAD points to."""
        mirror = self._mirror_dir(mirror)
        result = self._local(
            mirror, ["symbolic-ref", "--quiet", "--end-of-options", "HEAD"], "read HEAD", ok=(0, 1)
        )
        target = result.stdout.decode("utf-8", "replace").strip()
        if result.returncode != 0 or not target.startswith("refs/heads/"):
            raise GitError(f"Mirror {str(mirror)!r} has no default branch (HEAD is detached)")
        name = target.removeprefix("refs/heads/")
        if name not in self.branches(mirror):
            raise GitError(
                f"Default branch {name!r} of mirror {str(mirror)!r} does not exist "
                "(empty repository?)"
            )
        return name

    def branches(self, mirror: Path) -> list[str]:
        """Return the mirror's branch names, sorted."""
        mirror = self._mirror_dir(mirror)
        result = self._local(
            mirror,
            ["for-each-ref", "--format=%(refname)", "--end-of-options", "refs/heads/"],
            "list branches",
        )
        lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
        return [line.removeprefix("refs/heads/") for line in lines if line]

    def resolve(self, mirror: Path, ref: str) -> str:
        """Return the commit id a branch, tag (peeled) or commit id names in the mirror."""
        rev = validate_rev(ref)
        mirror = self._mirror_dir(mirror)
        result = self._local(
            mirror,
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
            f"resolve {ref!r}",
            ok=(0, 1, 128),
        )
        sha = result.stdout.strip()
        if result.returncode != 0 or not _SHA_LINE.fullmatch(sha):
            raise RefNotFoundError(
                f"Unknown ref {ref!r}: no branch, tag or commit of that name in {str(mirror)!r}"
            )
        return sha.decode("ascii")

    def first_parent_history(
        self, mirror: Path, newest: str, oldest: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Return commit ids on newest's first-parent chain, newest first, excluding oldest."""
        mirror = self._mirror_dir(mirror)
        args = ["rev-list", "--first-parent"]
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"Invalid limit {limit!r}: must be a non-negative integer")
            args.append(f"--max-count={limit}")
        args += ["--end-of-options", self.resolve(mirror, newest)]
        if oldest is not None:
            args.append("^" + self.resolve(mirror, oldest))
        result = self._local(mirror, [*args, "--"], "rev-list")
        return [line.decode("ascii") for line in result.stdout.split() if _SHA_LINE.fullmatch(line)]

    def is_ancestor(self, mirror: Path, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is reachable from ``descendant`` (a commit is its own)."""
        mirror = self._mirror_dir(mirror)
        older, newer = self.resolve(mirror, ancestor), self.resolve(mirror, descendant)
        result = self._local(
            mirror,
            ["merge-base", "--is-ancestor", "--end-of-options", older, newer],
            "merge-base",
            ok=(0, 1),
        )
        return result.returncode == 0

    def commit_info(self, mirror: Path, sha: str) -> CommitInfo:
        """Return the identity, parents, author and summary of one commit."""
        sha = validate_sha(sha)
        mirror = self._mirror_dir(mirror)
        result = self._local(
            mirror,
            ["log", "-1", _COMMIT_FORMAT, "--end-of-options", f"{sha}^{{commit}}", "--"],
            f"read commit {sha}",
        )
        fields = result.stdout.decode("utf-8", "replace").rstrip("\n").split("\x00")
        if len(fields) != 6:
            raise GitError(f"Unexpected output of git log for commit {sha!r}: {fields!r}")
        commit, parents, author, email, date, summary = fields
        return CommitInfo(commit, tuple(parents.split()), author, email, date, summary)

    # -- files -----------------------------------------------------------------------------

    def blame_line(self, mirror: Path, sha: str, path: str, line: int) -> BlameLine:
        """Return the commit that last changed ``line`` (1-based) of ``path`` at ``sha``."""
        sha, path = validate_sha(sha), validate_path(path)
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise ValueError(f"Invalid line {line!r}: must be an integer >= 1")
        mirror = self._mirror_dir(mirror)
        # blame has no --end-of-options in git 2.39; the sha is 40 hex digits, so it cannot
        # be read as an option, and the path comes after "--".
        result = self._local(
            mirror,
            ["blame", "--porcelain", "-L", f"{line},{line}", sha, "--", path],
            f"blame {path!r} line {line} at {sha}",
        )
        return parse_blame(result.stdout, path, line)

    def read_file(self, mirror: Path, sha: str, path: str, *, max_bytes: int) -> bytes:
        """Return the content of ``path`` at ``sha`` (a symlink's target as git stores it)."""
        sha, path = validate_sha(sha), validate_path(path)
        mirror = self._mirror_dir(mirror)
        entries = self._ls_tree(mirror, sha, ["--", path], recursive=False)
        entry = next((e for e in entries if e.path == path), None)
        if entry is None:
            raise GitError(f"No file {path!r} at commit {sha}")
        if entry.kind != "blob" or entry.size is None:
            raise GitError(f"Path {path!r} at commit {sha} is a {entry.kind}, not a file")
        if entry.size > max_bytes:
            raise GitError(
                f"File {path!r} at commit {sha} has {entry.size} bytes, "
                f"more than the {max_bytes} allowed"
            )
        result = self._local(
            mirror, ["cat-file", "blob", entry.oid], f"read {path!r} at {sha}", max_stdout=max_bytes
        )
        return result.stdout

    def list_tree(self, mirror: Path, sha: str) -> list[TreeEntry]:
        """Return every file, symlink and submodule entry of the tree at ``sha``."""
        sha = validate_sha(sha)
        entries = self._ls_tree(self._mirror_dir(mirror), sha, [], recursive=True)
        return [
            TreeEntry(
                path=e.path,
                mode=e.mode,
                size=e.size,
                is_symlink=e.mode == "120000",
                is_submodule=e.mode == "160000",
                oid=e.oid,
            )
            for e in entries
        ]

    def read_blobs(self, mirror: Path, oids: Sequence[str], *, max_bytes: int) -> dict[str, bytes]:
        """The contents of many blobs in one git process (oid -> bytes), at most max_bytes."""
        wanted = sorted({validate_sha(oid) for oid in oids})
        if not wanted:
            return {}
        mirror = self._mirror_dir(mirror)
        # Object ids go in through a file: the bounded runner reads output only.
        with tempfile.TemporaryFile() as ids:
            ids.write("".join(f"{oid}\n" for oid in wanted).encode("ascii"))
            ids.seek(0)
            result = self._run(
                ["cat-file", "--batch"],
                purpose=f"read {len(wanted)} blobs",
                subject=str(mirror),
                mirror=mirror,
                stdin=ids,
                max_stdout=max_bytes + 64 * len(wanted),
            )
        return parse_cat_file_batch(result.stdout)

    def _ls_tree(self, mirror: Path, sha: str, tail: list[str], *, recursive: bool) -> list[Entry]:
        flags = ["-r"] if recursive else []
        result = self._local(
            mirror,
            ["ls-tree", *flags, "-l", "-z", "--full-tree", "--end-of-options", sha, *tail],
            f"list tree at {sha}",
        )
        return [parse_ls_tree_record(rec) for rec in result.stdout.split(b"\x00") if rec]

    # -- building repositories (the demo's example) ----------------------------------------

    def build_repository(self, path: Path, commits: Sequence[CommitSpec]) -> dict[str, str]:
        """Create a repository at ``path`` from a scripted history; return branch heads.

        Each commit lands on its branch; a branch that does not exist yet starts at the head
        of ``start_from``. Files map to bytes (written) or None (deleted).
        """
        path = Path(path).absolute()
        if path.exists():
            raise GitError(f"Cannot build a repository at {str(path)!r}: it exists")
        path.mkdir(parents=True)
        work = ["--git-dir", str(path / ".git"), "--work-tree", str(path)]
        first = validate_ref(commits[0].branch) if commits else "main"
        self._run(["init", "--quiet", f"--initial-branch={first}", str(path)],
                  purpose="init", subject=str(path))  # fmt: skip
        heads: dict[str, str] = {}
        for commit in commits:
            branch = validate_ref(commit.branch)
            if heads and branch not in heads:
                start = heads[validate_ref(commit.start_from or first)]
                self._run([*work, "checkout", "--quiet", "-b", branch, start],
                          purpose="branch", subject=branch)  # fmt: skip
            elif heads:
                self._run([*work, "checkout", "--quiet", branch], purpose="checkout",
                          subject=branch)  # fmt: skip
            for name, data in commit.files.items():
                target = path / validate_path(name)
                if data is None:
                    target.unlink(missing_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self._run([*work, "add", "--all"], purpose="add", subject=str(path))
            author, email = commit.author
            identity = [
                "-c", f"user.name={author}", "-c", f"user.email={email}",
            ]  # fmt: skip
            stamp = f"@{commit.timestamp} +0000"
            self._run(
                [*identity, *work, "commit", "--quiet", "--allow-empty", "-m", commit.message,
                 f"--date={stamp}"],
                purpose="commit", subject=str(path),
                env={"GIT_COMMITTER_DATE": stamp},
            )  # fmt: skip
            heads[branch] = self.resolve(path / ".git", "HEAD")
        return heads

    # -- worktrees -------------------------------------------------------------------------

    def add_worktree(self, mirror: Path, sha: str, dest: Path) -> Path:
        """Check out ``sha`` (detached, no submodules) into a new worktree at ``dest``."""
        sha = validate_sha(sha)
        mirror = self._mirror_dir(mirror)
        dest = Path(dest).absolute()
        if dest.exists():
            raise GitError(f"Worktree destination {str(dest)!r} already exists")
        self._prune_worktrees(mirror)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._local(
            mirror,
            ["worktree", "add", "--detach", "--end-of-options", str(dest), sha],
            f"check out {sha}",
        )
        return dest

    def remove_worktree(self, mirror: Path, dest: Path) -> None:
        """Delete a worktree of the mirror (untracked files included) and its registration."""
        mirror = self._mirror_dir(mirror)
        dest = Path(dest).absolute()
        if dest.exists():
            if not _belongs_to(dest, mirror):
                raise GitError(f"{str(dest)!r} is not a worktree of mirror {str(mirror)!r}")
            result = self._local(
                mirror,
                ["worktree", "remove", "--force", "--force", "--end-of-options", str(dest)],
                f"remove worktree {str(dest)!r}",
                ok=(0, 128),
            )
            if result.returncode != 0:
                # Registration already pruned: the directory is ours (checked above).
                logger.warning("git: %s was not registered; deleting it", dest)
                shutil.rmtree(dest)
        self._prune_worktrees(mirror)

    def _prune_worktrees(self, mirror: Path) -> None:
        self._local(mirror, ["worktree", "prune"], "prune worktrees")

    # -- running git -----------------------------------------------------------------------

    def _local(
        self,
        mirror: Path,
        args: Sequence[str],
        purpose: str,
        *,
        ok: Sequence[int] = (0,),
        max_stdout: int | None = None,
    ) -> Result:
        """Run a local (no network) git command in a mirror."""
        return self._run(
            args, purpose=purpose, subject=str(mirror), mirror=mirror, ok=ok, max_stdout=max_stdout
        )

    def _mirror_dir(self, mirror: Path) -> Path:
        path = Path(mirror).absolute()
        if not path.is_dir():
            raise GitError(f"No mirror at {str(path)!r}")
        return path

    def _run(
        self,
        args: Sequence[str],
        *,
        purpose: str,
        subject: str,
        mirror: Path | None = None,
        network: bool = False,
        ok: Sequence[int] = (0,),
        max_stdout: int | None = None,
        stdin: IO[bytes] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run one git command with the hardened config, env and time bounds."""
        # An explicit --git-dir and cwd "/" mean git never discovers (and reads the config
        # of) a repository that happens to surround the cache directory.
        repo = ["--git-dir", str(mirror)] if mirror is not None else []
        argv = [self._git, *self._config, *repo, *args]
        logger.debug("git: %s for %s: %s", purpose, subject, args)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**self._env, **(env or {})},
                cwd="/",
                start_new_session=True,  # so a timeout kills remote helpers and ssh too
            )
        except OSError as exc:
            raise GitError(f"Cannot run {self._git!r} for {purpose} of {subject!r}: {exc}") from exc
        idle = self._network_timeout if network else None
        try:
            stdout, stderr = communicate(proc, self._timeout, idle, max_stdout)
        except Expired as exc:
            raise GitTimeoutError(f"git {purpose} of {subject!r} {exc}") from None
        except TooLarge:
            raise GitError(
                f"git {purpose} of {subject!r} produced more than {max_stdout} bytes"
            ) from None
        message = tidy_stderr(stderr)
        if proc.returncode not in ok:
            text = f"git {purpose} of {subject!r} failed (exit {proc.returncode}): {message}"
            if network and _STALL_MESSAGES.search(message):
                raise GitTimeoutError(text)
            raise GitError(text)
        return Result(proc.returncode, stdout, message)


def _belongs_to(worktree: Path, mirror: Path) -> bool:
    """True when ``worktree``'s .git file points into ``mirror``'s worktree registry."""
    try:
        text = (worktree / ".git").read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    gitdir = Path(text.removeprefix("gitdir: ")).resolve()
    return text.startswith("gitdir: ") and gitdir.parent == mirror.resolve() / "worktrees"


def _valid_ref_or_none(ref: str) -> str | None:
    try:
        return validate_ref(ref)
    except GitError:
        return None
