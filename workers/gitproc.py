"""Running git within bounds, and parsing what it prints.

``communicate`` collects a process's output under a total and an idle time bound and kills
its whole process group when either passes; the parsers turn porcelain output into values.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from workers.errors import GitError

_STDERR_LIMIT = 2000
_SHA_LINE = re.compile(rb"[0-9a-f]{40}")
_PROGRESS_LINE = re.compile(r"\d+% \(\d+/\d+\)|^Cloning into |^remote: (Enumerating|Total) ")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


@dataclass(frozen=True)
class CommitInfo:
    """A commit's identity and authorship, as recorded in the commit (no mailmap)."""

    sha: str
    parents: tuple[str, ...]
    author: str
    author_email: str
    date: str  # author date, ISO 8601 with its UTC offset
    summary: str


@dataclass(frozen=True)
class BlameLine:
    """The commit that last changed one line; ``path`` and ``line`` are as of that commit."""

    commit: str
    path: str
    line: int
    author: str
    author_email: str
    date: str
    summary: str


@dataclass(frozen=True)
class TreeEntry:
    """One non-tree entry of a commit's tree; ``size`` is None for submodules."""

    path: str
    mode: str
    size: int | None
    is_symlink: bool
    is_submodule: bool
    oid: str = ""


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class Entry:
    mode: str
    kind: str
    oid: str
    size: int | None
    path: str


class Expired(Exception):
    pass


class TooLarge(Exception):
    pass


def communicate(
    proc: subprocess.Popen[bytes], timeout: float, idle: float | None, max_stdout: int | None
) -> tuple[bytes, bytes]:
    """Collect a process's output within a total and an idle time bound; kill it otherwise."""
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - Popen with PIPE
        raise GitError("git was started without output pipes")
    out, err = bytearray(), bytearray()
    start = last = time.monotonic()
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map():
                deadline = start + timeout if idle is None else min(start + timeout, last + idle)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Expired(_expiry_text(timeout, idle, start, last))
                for key, _ in sel.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    last = time.monotonic()
                    key.data.extend(chunk)
                    if max_stdout is not None and len(out) > max_stdout:
                        raise TooLarge
                    # Only the tail of stderr matters (the fatal line comes last).
                    del err[:-65536]
        try:
            proc.wait(max(0.0, start + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Expired(_expiry_text(timeout, None, start, last)) from None
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return bytes(out), bytes(err)


def _expiry_text(timeout: float, idle: float | None, start: float, last: float) -> str:
    if idle is not None and last + idle < start + timeout:
        return f"timed out: no progress for {idle:g} s"
    return f"timed out: did not finish within {timeout:g} s"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # Not yet reaped, so the group id cannot have been reused by another process.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tidy_stderr(raw: bytes) -> str:
    """Git's stderr without progress noise or URL credentials, bounded in size."""
    text = raw.decode("utf-8", "replace")
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    lines = [line for line in lines if not _PROGRESS_LINE.search(line)]
    text = _URL_USERINFO.sub(r"\1***@", "\n".join(lines))
    if len(text) > _STDERR_LIMIT:
        text = "…" + text[-_STDERR_LIMIT:]
    return text or "(no message)"


def parse_ls_tree_record(record: bytes) -> Entry:
    meta, _, raw_path = record.partition(b"\t")
    mode, kind, oid, size = meta.decode("ascii").split(maxsplit=3)
    return Entry(
        mode=mode,
        kind=kind,
        oid=oid,
        size=None if size.strip() == "-" else int(size),
        path=raw_path.decode("utf-8", "surrogateescape"),
    )


def parse_blame(output: bytes, path: str, line: int) -> BlameLine:
    """Parse ``git blame --porcelain`` output for a single line."""
    lines = output.decode("utf-8", "replace").split("\n")
    head = lines[0].split()
    if len(head) < 3 or not _SHA_LINE.fullmatch(head[0].encode()):
        raise GitError(f"Unexpected git blame output for {path!r} line {line}: {lines[0]!r}")
    fields: dict[str, str] = {}
    for header in lines[1:]:
        if header.startswith("\t"):
            break
        key, _, value = header.partition(" ")
        fields[key] = value
    return BlameLine(
        commit=head[0],
        path=fields.get("filename", path),
        line=int(head[1]),
        author=fields.get("author", ""),
        author_email=fields.get("author-mail", "").removeprefix("<").removesuffix(">"),
        date=_iso_date(fields.get("author-time", "0"), fields.get("author-tz", "+0000")),
        summary=fields.get("summary", ""),
    )


def _iso_date(epoch: str, tz: str) -> str:
    """ISO 8601 from git's ``<epoch> <+hhmm>`` pair, in the author's own UTC offset."""
    sign = -1 if tz.startswith("-") else 1
    digits = tz.lstrip("+-").rjust(4, "0")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])) * sign
    return datetime.fromtimestamp(int(epoch), timezone(offset)).isoformat()


def parse_cat_file_batch(output: bytes) -> dict[str, bytes]:
    """Parse ``git cat-file --batch`` output: ``<oid> <type> <size>\\n<content>\\n`` each."""
    blobs: dict[str, bytes] = {}
    pos = 0
    while pos < len(output):
        newline = output.index(b"\n", pos)
        header = output[pos:newline].split()
        if len(header) == 2 and header[1] == b"missing":
            raise GitError(f"git object {header[0].decode('ascii', 'replace')} is missing")
        if len(header) != 3:
            raise GitError(f"unexpected git cat-file output: {output[pos:newline][:200]!r}")
        size = int(header[2])
        start = newline + 1
        blobs[header[0].decode("ascii")] = output[start : start + size]
        pos = start + size + 1
    return blobs
