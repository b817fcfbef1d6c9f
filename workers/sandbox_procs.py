"""Finding and ending a child's processes, including the ones that left its process group.

Signals go through pidfds where the kernel has them: a pid read from ``/proc`` may be
reused by an unrelated process before we signal it, but a pidfd opened first and checked
afterwards always names the process we checked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_PROC = "/proc"


@dataclass(frozen=True)
class ProcInfo:
    """What ``/proc/<pid>`` says about one process."""

    pid: int
    state: str
    pgrp: int
    uids: tuple[int, ...]  # real, effective, saved, filesystem


def read_proc(pid: int, root: str = _PROC) -> ProcInfo | None:
    """One process's state, group and uids, or None if it is gone."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"{root}/{pid}/status", "rb") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain ") ".
    fields = stat.rpartition(b")")[2].split()
    uids: tuple[int, ...] = ()
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uids = tuple(int(v) for v in line.split()[1:])
            break
    return ProcInfo(pid=pid, state=fields[0].decode(), pgrp=int(fields[2]), uids=uids)


def processes(root: str = _PROC) -> Iterator[ProcInfo]:
    """Every live (not zombie) process currently listed in ``/proc``."""
    for name in os.listdir(root):
        if name.isdigit():
            info = read_proc(int(name), root)
            if info is not None and info.state not in ("Z", "X"):
                yield info


def _signal_checked(pid: int, sig: int, still: Callable[[ProcInfo], bool]) -> bool:
    """Send ``sig`` to ``pid`` if it still matches ``still``; True if sent."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:  # no pidfds (old kernel, seccomp): fall back to the racy way
        info = read_proc(pid)
        if info is None or not still(info):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return True
    try:
        info = read_proc(pid)
        if info is None or not still(info):
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, sig)
        return True
    finally:
        os.close(fd)


def signal_group_except(pgrp: int, sig: int, spare: int) -> int:
    """Send ``sig`` to every member of process group ``pgrp`` except ``spare``; how many."""

    def member(info: ProcInfo) -> bool:
        return info.pgrp == pgrp

    return sum(
        _signal_checked(info.pid, sig, member)
        for info in processes()
        if info.pgrp == pgrp and info.pid != spare
    )


def kill_uid(uid: int, *, rounds: int = 200, pause: float = 0.005) -> int:
    """SIGKILL every process running as ``uid`` until none is left; returns survivors.

    A process being killed cannot fork any more, but one we had not reached yet may fork
    between our scan and its kill, so scan again until a scan finds nothing.
    """
    own = os.getpid()

    def runs_as(info: ProcInfo) -> bool:
        return uid in info.uids

    found: list[ProcInfo] = []
    for _ in range(rounds):
        found = [info for info in processes() if uid in info.uids and info.pid != own]
        if not found:
            return 0
        for info in found:
            _signal_checked(info.pid, signal.SIGKILL, runs_as)
        time.sleep(pause)
    logger.warning(
        "processes of harness uid %d survive SIGKILL: %s", uid, [i.pid for i in found][:20]
    )
    return len(found)


def killpg_quietly(pgrp: int, sig: int) -> None:
    """``killpg`` that ignores a group with no members left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgrp, sig)


class ExitWatch:
    """Waits for a child to exit *without* reaping it, so its pid and group stay ours."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except OSError:
            self._fd = None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True once the child has exited."""
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
            return bool(ready)
        end = time.monotonic() + max(0.0, timeout)
        while True:
            info = os.waitid(os.P_PID, self._pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Release the pidfd."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_child_pid(fd: int, timeout: float) -> int | None:
    """The ``child-pid`` from bwrap's ``--json-status-fd`` first line, or None."""
    data = b""
    end = time.monotonic() + timeout
    while b"\n" not in data:
        remaining = end - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:  # bwrap failed before creating the namespace
            return None
        data += chunk
    try:
        pid = json.loads(data.split(b"\n", 1)[0])["child-pid"]
    except (ValueError, KeyError, TypeError):
        logger.warning("unexpected bwrap status line: %r", data[:200])
        return None
    return pid if isinstance(pid, int) else None


class NamespaceInit:
    """The first process of a PID namespace: once it has exited, so has everything in it."""

    def __init__(self, pid: int, parent: int) -> None:
        self._pid = pid
        self._fd: int | None = None
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pid = 0  # already gone, and its namespace with it
            return
        except OSError:
            pass  # no pidfds: fall back to polling /proc below
        # Until its parent (bwrap) reaps it the pid cannot be reused; make sure it is ours.
        if _parent_of(pid) not in (parent, None):
            self.close()
            self._pid = 0

    def kill_and_wait(self, timeout: float) -> bool:
        """SIGKILL it (which kills the namespace) and wait for it; True if it is gone."""
        if not self._pid:
            return True
        if self._fd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._fd, signal.SIGKILL)
            return bool(select.select([self._fd], [], [], timeout)[0])
        info = read_proc(self._pid)
        if info is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        end = time.monotonic() + timeout
        while (info := read_proc(self._pid)) is not None and info.state not in ("Z", "X"):
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Release the pidfd."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class BwrapStatus:
    """The pipe bwrap reports on (``--json-status-fd``); a context manager closing it."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def started(self, bwrap_pid: int, timeout: float = 10.0) -> NamespaceInit | None:
        """The namespace bwrap created, once it says so (None if it failed first)."""
        os.close(self.write_fd)  # bwrap has its copy; EOF then means bwrap is gone
        self.write_fd = -1
        pid = read_child_pid(self.read_fd, timeout)
        return None if pid is None else NamespaceInit(pid, bwrap_pid)

    def __enter__(self) -> BwrapStatus:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# A sweep by uid kills every process of that uid, so two runs that rely on one must not
# overlap: they take this lock, one per uid, for their whole run.
_uid_locks: dict[int, threading.Lock] = {}
_uid_locks_guard = threading.Lock()


def uid_lock(uid: int) -> threading.Lock:
    """The process-wide lock that serializes sweeping runs of one harness uid."""
    with _uid_locks_guard:
        return _uid_locks.setdefault(uid, threading.Lock())
