"""An object store on a local directory tree: the embedded default.

Every path is reached from a descriptor of the root, one component at a time with
``O_NOFOLLOW`` (``openat`` style), so a symlink planted anywhere inside the root is never
followed: it reads as a missing object and is never written through. Writes go to a temp
file under ``<root>/.tmp/`` (same filesystem), are fsynced, then hard-linked into place:
``link`` fails on an existing name, which makes put-if-absent atomic across processes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat as st
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from workers.errors import InvalidKeyError, StorageError
from workers.storage.base import (
    DEFAULT_PAGE_LIMIT,
    ListPage,
    ObjectInfo,
    ObjectStore,
    key_conflict,
    not_found,
    too_large,
    validate_key,
    validate_limit,
    validate_max_bytes,
    validate_prefix,
    write_file_atomically,
)

logger = logging.getLogger(__name__)

TMP_DIR = ".tmp"
_CHUNK = 1 << 20
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_STALE_TMP_SECONDS = 24 * 3600
_WALK_ATTEMPTS = 50  # walks of a key's folders when concurrent deletes keep pruning them
# Opening a non-directory (or a symlink, with O_NOFOLLOW) as a folder fails with these.
_NOT_A_FOLDER = {errno.ENOTDIR, errno.ELOOP}

_Filler = Callable[[int], None]  # writes an object's bytes to a descriptor


class FilesystemObjectStore(ObjectStore):
    """Objects as files under ``root``; keys map to relative paths."""

    def __init__(self, root: Path | str) -> None:
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            # The operator chose the root, so resolving a symlink *to* it is fine; only links
            # inside it are refused.
            self._root = root.resolve(strict=True)
            with self._dir(()) as root_fd, contextlib.suppress(FileExistsError):
                os.mkdir(TMP_DIR, 0o700, dir_fd=root_fd)
            self._remove_stale_temps()
        except OSError as exc:
            raise StorageError(f"Cannot use {str(root)!r} as an object store: {exc}") from exc

    def describe(self) -> str:
        """A short description for logs and errors."""
        return f"filesystem store at {str(self._root)!r}"

    # -- writing ---------------------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless something is there; True if this call wrote it."""
        validate_key(key)
        if self.exists(key):
            return False
        view = memoryview(data)
        return self._publish(key, lambda out: _write_all(out, view))

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        """Like ``put_if_absent`` with the bytes of a local file, copied in chunks."""
        validate_key(key)
        if self.exists(key):
            return False
        # The caller's file: errors opening it are theirs (OSError), not the store's.
        with open(path, "rb") as source:
            return self._publish(key, lambda out: _copy_fd(source.fileno(), out))

    def _publish(self, key: str, fill: _Filler) -> bool:
        """Write a temp file with ``fill`` and link it under ``key``; False if already there."""
        name = f"{secrets.token_hex(12)}.tmp"
        with self._os_errors("write", key), self._dir((TMP_DIR,), create=True) as tmp_fd:
            fd = os.open(name, _TMP_FLAGS, 0o644, dir_fd=tmp_fd)
            try:
                try:
                    fill(fd)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                return self._link(tmp_fd, name, key)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=tmp_fd)

    def _link(self, tmp_fd: int, tmp_name: str, key: str) -> bool:
        """Hard-link the temp file to ``key``; a concurrent delete may prune folders, so retry."""
        *folders, name = key.split("/")
        for _ in range(_WALK_ATTEMPTS):
            try:
                with self._dir(tuple(folders), create=True, key=key) as parent_fd:
                    try:
                        os.link(
                            tmp_name,
                            name,
                            src_dir_fd=tmp_fd,
                            dst_dir_fd=parent_fd,
                            follow_symlinks=False,
                        )
                    except FileExistsError:
                        if self._claimed(parent_fd, name, key):
                            return False
                        continue  # we removed an empty folder that held the name
                    os.fsync(parent_fd)  # make the new name itself durable
                    return True
            except FileNotFoundError:
                continue  # a concurrent delete pruned a folder on our path: walk it again
        raise StorageError(f"Cannot write {key!r} in {self.describe()}: folders keep changing")

    def _claimed(self, parent_fd: int, name: str, key: str) -> bool:
        """True if ``name`` is an object; an empty leftover folder is removed so we can retry."""
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if st.S_ISREG(info.st_mode):
            return True
        if st.S_ISDIR(info.st_mode):
            try:
                os.rmdir(name, dir_fd=parent_fd)
            except OSError:
                inside = self.list_page(key + "/", limit=1).keys
                raise key_conflict(self, key, inside[0] if inside else key + "/") from None
            return False
        raise StorageError(f"Cannot write {key!r} in {self.describe()}: a non-file is in the way")

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; ``StorageError`` if it is larger than ``max_bytes``."""
        validate_key(key)
        validate_max_bytes(max_bytes)
        with self._open_object(key) as fd:
            size = os.fstat(fd).st_size
            if max_bytes is not None and size > max_bytes:
                raise too_large(self, key, size, max_bytes)
            # Read to EOF rather than trusting the size, but never past the bound.
            bound = None if max_bytes is None else max_bytes + 1
            data = b"".join(_read_chunks(fd, bound))
        if max_bytes is not None and len(data) > max_bytes:
            raise too_large(self, key, len(data), max_bytes)
        return data

    def get_to_file(self, key: str, path: Path) -> int:
        """Copy the object to ``path`` (atomically replaced) and return its size."""
        validate_key(key)
        with self._open_object(key) as fd:
            return write_file_atomically(Path(path), _read_chunks(fd, None))

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""
        return self._lstat(key) is not None

    def stat(self, key: str) -> ObjectInfo:
        """The object's key and size."""
        info = self._lstat(key)
        if info is None:
            raise not_found(self, key)
        return ObjectInfo(key=key, size=info.st_size)

    def _lstat(self, key: str) -> os.stat_result | None:
        """The object's stat, or None when no regular file is stored under ``key``."""
        validate_key(key)
        *folders, name = key.split("/")
        with self._os_errors("stat", key), self._dir(tuple(folders)) as parent_fd:
            if parent_fd < 0:
                return None
            try:
                info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
        return info if st.S_ISREG(info.st_mode) else None

    @contextlib.contextmanager
    def _open_object(self, key: str) -> Iterator[int]:
        """A read descriptor of the object, without following any symlink."""
        *folders, name = key.split("/")
        with self._os_errors("read", key), self._dir(tuple(folders)) as parent_fd:
            if parent_fd < 0:
                raise not_found(self, key)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno in _NOT_A_FOLDER or exc.errno == errno.ENOENT:
                    raise not_found(self, key) from None
                raise
        try:
            if not st.S_ISREG(os.fstat(fd).st_mode):
                raise not_found(self, key)
            yield fd
        finally:
            os.close(fd)

    # -- listing and deleting --------------------------------------------------------------

    def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = DEFAULT_PAGE_LIMIT
    ) -> ListPage:
        """Up to ``limit`` keys that start with ``prefix`` and sort after ``start_after``."""
        validate_prefix(prefix)
        validate_prefix(start_after)
        validate_limit(limit)
        folders = tuple(prefix.split("/")[:-1])
        base = "".join(f"{part}/" for part in folders)
        keys: list[str] = []
        with self._os_errors("list", prefix), self._dir(folders) as fd:
            if fd >= 0:
                for key in _walk(fd, base, prefix, start_after):
                    keys.append(key)
                    if len(keys) > limit:
                        break
        if len(keys) > limit:
            return ListPage(tuple(keys[:limit]), keys[limit - 1])
        return ListPage(tuple(keys), None)

    def delete(self, key: str) -> bool:
        """Remove the object if present, then prune folders it leaves empty."""
        validate_key(key)
        parts = key.split("/")
        with self._os_errors("delete", key), contextlib.ExitStack() as stack:
            fds = [stack.enter_context(self._dir(()))]
            for part in parts[:-1]:
                fds.append(stack.enter_context(_subdir(fds[-1], part)))
                if fds[-1] < 0:
                    return False
            try:
                info = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not st.S_ISREG(info.st_mode):
                return False
            try:
                os.unlink(parts[-1], dir_fd=fds[-1])
            except FileNotFoundError:
                return False  # a concurrent delete won
            for depth in range(len(parts) - 1, 0, -1):
                try:
                    os.rmdir(parts[depth - 1], dir_fd=fds[depth - 1])
                except OSError:
                    break  # not empty (or already gone): stop pruning
        return True

    # -- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _dir(
        self, folders: tuple[str, ...], *, create: bool = False, key: str = ""
    ) -> Iterator[int]:
        """A descriptor of ``root/folders``, or -1 when it does not exist (and not ``create``).

        With ``create``, missing folders are made; a file in the way is a key conflict.
        """
        fd = os.open(self._root, _DIR_FLAGS)
        try:
            for depth in range(len(folders)):
                child = self._child(fd, folders[: depth + 1], create, key)
                os.close(fd)
                fd = child
                if fd < 0:
                    break
            yield fd
        finally:
            if fd >= 0:
                os.close(fd)

    def _child(self, parent_fd: int, folders: tuple[str, ...], create: bool, key: str) -> int:
        """A descriptor of the last of ``folders`` inside ``parent_fd``, or -1 (see ``_dir``).

        With ``create``, FileNotFoundError means a concurrent delete pruned a folder on the
        way (even the parent we hold): the caller walks the path again.
        """
        name = folders[-1]
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent_fd)
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in _NOT_A_FOLDER and create:
                self._refuse_folder(parent_fd, folders, key)
            if create or (exc.errno not in _NOT_A_FOLDER and exc.errno != errno.ENOENT):
                raise
            return -1

    def _refuse_folder(self, parent_fd: int, folders: tuple[str, ...], key: str) -> NoReturn:
        """Explain why ``folders`` cannot be a folder: an object is there, or a non-file."""
        info = os.stat(folders[-1], dir_fd=parent_fd, follow_symlinks=False)
        if st.S_ISREG(info.st_mode):
            raise key_conflict(self, key, "/".join(folders))
        raise StorageError(
            f"Cannot write {key!r} in {self.describe()}: {'/'.join(folders)!r} is a symlink "
            "or special file, not a folder"
        )

    @contextlib.contextmanager
    def _os_errors(self, action: str, key: str) -> Iterator[None]:
        """Turn an unexpected OS failure inside the store into a ``StorageError``."""
        try:
            yield
        except OSError as exc:
            raise StorageError(f"Cannot {action} {key!r} in {self.describe()}: {exc}") from exc

    def _remove_stale_temps(self) -> None:
        """Delete temp files a crashed writer left behind long ago."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        with self._dir((TMP_DIR,)) as tmp_fd, os.scandir(tmp_fd) as entries:
            for entry in entries:
                # Another process may remove the same file first: that is fine.
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.name, dir_fd=tmp_fd)
                        logger.info("removed stale temp file %s", entry.name)


@contextlib.contextmanager
def _subdir(parent_fd: int, name: str) -> Iterator[int]:
    """A descriptor of folder ``name`` in ``parent_fd``, or -1 if it is not a real folder."""
    if parent_fd < 0:
        yield -1
        return
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno not in _NOT_A_FOLDER and exc.errno != errno.ENOENT:
            raise
        yield -1
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _walk(fd: int, base: str, prefix: str, start_after: str) -> Iterator[str]:
    """Keys under folder ``fd`` (whose keys start with ``base``) in ascending key order.

    Sorting folders as ``name + "/"`` makes a depth-first walk yield keys in plain string
    order ('a-b' < 'a/x' < 'ab'), which is the order S3 lists them in.
    """
    entries: list[tuple[str, str, bool]] = []
    with os.scandir(fd) as scan:
        for entry in scan:
            if entry.is_symlink():
                continue  # never followed, never listed
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                continue
            entries.append((entry.name + "/" if is_dir else entry.name, entry.name, is_dir))
    entries.sort()
    for sort_name, name, is_dir in entries:
        full = base + sort_name
        if not is_dir:
            if full.startswith(prefix) and full > start_after and _is_key(full):
                yield full
            continue
        if not (full.startswith(prefix) or prefix.startswith(full)):
            continue
        if full <= start_after and not start_after.startswith(full):
            continue  # every key in this folder sorts at or before start_after
        if not _is_key(full[:-1]):
            continue
        with _subdir(fd, name) as child:
            if child >= 0:
                yield from _walk(child, full, prefix, start_after)


def _is_key(candidate: str) -> bool:
    """True if a name found on disk is a valid key (skips our dot-folder and foreign files)."""
    try:
        validate_key(candidate)
    except InvalidKeyError:
        return False
    return True


def _write_all(fd: int, view: memoryview) -> None:
    """Write every byte of ``view`` to ``fd``."""
    while view:
        view = view[os.write(fd, view) :]


def _copy_fd(source: int, out: int) -> None:
    """Copy ``source`` to ``out`` in bounded chunks."""
    for chunk in _read_chunks(source, None):
        _write_all(out, memoryview(chunk))


def _read_chunks(fd: int, bound: int | None) -> Iterator[bytes]:
    """Chunks read from ``fd`` until EOF, or until ``bound`` bytes have been read."""
    remaining = bound
    while remaining is None or remaining > 0:
        chunk = os.read(fd, _CHUNK if remaining is None else min(_CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
