"""Reading files a harness could have written: regular files only, never through a link.

A harness owns its writable folders for the run. It can leave a symlink where the worker
expects its output (``/proc/self/environ`` would hand the worker's own environment, with
its storage credentials, to whoever reads it) or a FIFO that blocks the reader forever.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The first ``max_bytes`` of ``path`` if it is a regular file, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        left = max_bytes
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_new(root: Path, relative: str, data: bytes) -> None:
    """Create ``root/relative`` with ``data``, refusing any symlink or non-folder on the way.

    Raises ``OSError`` (``FileExistsError``, ``NotADirectoryError`` …) when the path is
    taken or leads anywhere but a fresh file inside ``root``.
    """
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or ".." in parts:
        raise OSError(f"refusing to write {relative!r}: not a plain relative path")
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        try:
            info = folder.lstat()
        except FileNotFoundError:
            folder.mkdir(mode=0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(
                f"refusing to write {relative!r}: {str(folder)!r} is a link or a file"
            )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder / parts[-1], flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
