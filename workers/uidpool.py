"""Unprivileged uids for harnesses, one per concurrent run slot on a host.

The process limit (RLIMIT_NPROC) counts every process of a uid, so two jobs sharing one
uid share one limit: a fork-bombing harness would starve the other job (seen in our own
tests). Each worker slot therefore holds its own uid for as long as it runs, claimed
through a lock file that the kernel releases if the worker dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from workers.errors import WorkerError

FIRST_UID = 61_000
UID_COUNT = 1_000
# Host-wide, and root-only: a uid is only worth a lock if every worker on the host sees it.
LOCK_DIR = Path("/run/fuzzorch-harness-uids")


class NoFreeUidError(WorkerError):
    """Every harness uid of the pool is held by a running slot."""

    transient = True


@contextlib.contextmanager
def harness_uid(
    *, first: int = FIRST_UID, count: int = UID_COUNT, lock_dir: Path = LOCK_DIR
) -> Iterator[int | None]:
    """Hold a free harness uid for the block; None when not root (the sandbox then uses
    a user namespace and there is no host uid to share)."""
    if os.geteuid() != 0:
        yield None
        return
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(lock_dir)
    if info.st_uid != 0 or not os.path.isdir(lock_dir) or os.path.islink(lock_dir):
        raise WorkerError(f"{str(lock_dir)!r} must be a directory owned by root")
    for uid in range(first, first + count):
        handle = _try_lock(lock_dir / str(uid))
        if handle is None:
            continue
        try:
            yield uid
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise NoFreeUidError(f"all {count} harness uids from {first} are in use ({lock_dir})")


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a")  # noqa: SIM115 - held open for the whole slot
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
