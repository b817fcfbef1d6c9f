"""File modes for caches the harness uid reads but must never write."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def seal(root: Path, *, owner: tuple[int, int] | None = None) -> None:
    """Make a tree readable (and traversable) by all and writable only by its owner.

    With ``owner``, ownership is taken back first: a build that ran as the harness uid
    leaves files the harness could otherwise rewrite for the next job.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            _seal_one(os.path.join(dirpath, name), owner)
    _seal_one(str(root), owner)


def _seal_one(path: str, owner: tuple[int, int] | None) -> None:
    with contextlib.suppress(OSError):
        if owner is not None:
            os.lchown(path, *owner)
        if os.path.islink(path):
            return
        mode = os.stat(path).st_mode & 0o7777
        executable = 0o111 if mode & 0o100 else 0
        # setuid/setgid bits never survive: nothing in a cache should run as its owner.
        os.chmod(path, (mode | 0o444 | executable) & ~0o022 & ~0o6000)
