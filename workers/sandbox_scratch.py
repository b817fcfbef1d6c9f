"""The run's scratch directory and the paths lent to the harness uid.

Each run gets a fresh directory under the scratch root, owned by the harness uid, which is
its working directory, ``HOME`` and ``TMPDIR``; it is removed afterwards whatever the
harness did to it (``chmod 000`` on a subfolder, files of its own uid, fifos, symlinks:
``shutil.rmtree`` never follows them). Writable paths the caller lists are handed to the
harness uid, whole trees, for the run, and handed back after it: then everything in them,
including what the harness created, belongs to the path's previous owner again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from workers.errors import SandboxConfigError

logger = logging.getLogger(__name__)


def check_file_name(name: str) -> PurePosixPath:
    """A ``cwd_files`` name as a safe relative path, or SandboxConfigError."""
    path = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or path.is_absolute()
        or any(part in ("..", "") for part in name.split("/"))
    ):
        raise SandboxConfigError(
            f"Invalid scratch file name {name!r}: must be a plain relative path"
        )
    return path


def make_scratch(root: Path, files: Mapping[str, bytes], owner: tuple[int, int] | None) -> Path:
    """A new private directory under ``root`` holding ``files``, owned by ``owner``."""
    checked = {check_file_name(name): data for name, data in files.items()}
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        for rel, data in checked.items():
            target = scratch / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if owner is not None:
            for dirpath, dirnames, filenames in os.walk(scratch):
                for name in (".", *dirnames, *filenames):
                    os.chown(os.path.join(dirpath, name), *owner, follow_symlinks=False)
    except BaseException:
        remove_tree(scratch)
        raise
    return scratch


def remove_tree(path: Path) -> bool:
    """Delete a directory tree the harness may have made hostile; True if it is gone."""
    if os.geteuid() != 0:
        # Root ignores modes; anyone else must reopen what the harness locked first.
        _open_up(path)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        logger.warning("could not remove scratch directory %s", path)
        return False
    return True


def _open_up(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            child = os.path.join(dirpath, name)
            if not os.path.islink(child):
                # Before os.walk descends into it, so a 000 folder can be listed.
                with contextlib.suppress(OSError):
                    os.chmod(child, stat.S_IRWXU)


def lend(paths: Sequence[Path], owner: tuple[int, int] | None) -> list[tuple[Path, int, int]]:
    """Give ``owner`` each path's whole tree for the run; returns what ``give_back`` needs."""
    if owner is None:
        return []
    lent: list[tuple[Path, int, int]] = []
    try:
        for path in paths:
            st = path.lstat()
            lent.append((path, st.st_uid, st.st_gid))
            _chown_tree(path, owner, only_from=None)
    except BaseException:
        give_back(lent, owner)
        raise
    return lent


def give_back(lent: Sequence[tuple[Path, int, int]], owner: tuple[int, int] | None) -> None:
    """Return each lent tree (with what the harness made in it) to the path's old owner."""
    for path, uid, gid in lent:
        try:
            _chown_tree(path, (uid, gid), only_from=owner[0] if owner else None)
        except OSError as exc:
            logger.warning("could not restore the owner of %s: %s", path, exc)


def _chown_tree(root: Path, to: tuple[int, int], *, only_from: int | None) -> None:
    """lchown a tree without following links; files with several names are left alone.

    A file with another hard link may be that link to something outside the tree (planted
    by an earlier run where the kernel allows linking others' files): never hand it over.
    """
    entries = [str(root)]
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            entries += [os.path.join(dirpath, name) for name in (*dirnames, *filenames)]
    for entry in entries:
        try:
            st = os.lstat(entry)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            continue
        if only_from is not None and st.st_uid != only_from:
            continue
        if (st.st_uid, st.st_gid) != to:
            os.chown(entry, *to, follow_symlinks=False)


def unreachable(
    path: Path, uid: int, gid: int, *, ancestors: bool, read: bool = True
) -> str | None:
    """Why ``uid``/``gid`` cannot reach (and ``read``) ``path``, parents too if asked; or None."""
    chain = [*reversed(path.parents), path] if ancestors else [path]
    for step in chain:
        try:
            st = step.stat()
        except OSError as exc:
            return f"{str(step)!r} cannot be read: {exc.strerror}"
        last = step == path
        is_dir = stat.S_ISDIR(st.st_mode)
        need = (stat.S_IXOTH if is_dir else 0) | (stat.S_IROTH if last and read else 0)
        if st.st_uid == uid:
            need <<= 6
        elif st.st_gid == gid:
            need <<= 3
        if st.st_mode & need != need:
            return f"{str(step)!r} has mode {stat.S_IMODE(st.st_mode):#o}"
    return None
