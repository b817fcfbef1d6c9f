"""The object store interface, its key rules and the small values it returns.

Keys look like relative POSIX paths (``corpus/<repo>/<harness-id>/<sha1>``). The rules are
strict on purpose: a key that is valid here is a safe path under a directory, a safe S3
object name and a safe URL path segment, so no implementation has to escape anything.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.errors import InvalidKeyError, ObjectNotFoundError, StorageError

MAX_KEY_BYTES = 1024
# Directory-backed stores map each component to a file name: stay within NAME_MAX.
MAX_COMPONENT_BYTES = 255
DEFAULT_PAGE_LIMIT = 1000
KEY_CHARACTERS = "A-Z a-z 0-9 . _ - / = + @ ,"

_ALLOWED = re.compile(r"[A-Za-z0-9._\-/=+@,]*")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object."""

    key: str
    size: int


@dataclass(frozen=True)
class ListPage:
    """One page of a listing: keys in ascending order, and where the next page starts."""

    keys: tuple[str, ...]
    next_start_after: str | None


def _check(value: object, what: str, *, allow_empty: bool, allow_trailing_slash: bool) -> str:
    """Return ``value`` if it satisfies the key rules, else raise ``InvalidKeyError``."""

    def refuse(rule: str) -> InvalidKeyError:
        return InvalidKeyError(f"Invalid object {what} {value!r}: {rule}")

    if not isinstance(value, str):
        raise refuse("must be a str")
    if not value:
        if allow_empty:
            return value
        raise refuse("must not be empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise refuse(f"longer than {MAX_KEY_BYTES} bytes")
    if not _ALLOWED.fullmatch(value):
        bad = next(ch for ch in value if not _ALLOWED.fullmatch(ch))
        raise refuse(f"character {bad!r} is not allowed (allowed: {KEY_CHARACTERS})")
    if value.startswith("/"):
        raise refuse("must be relative (no leading '/')")
    body = value[:-1] if allow_trailing_slash and value.endswith("/") else value
    for part in body.split("/"):
        if not part:
            raise refuse("has an empty path component ('//' or a trailing '/')")
        if part in {".", ".."}:
            raise refuse(f"has a {part!r} path component")
        if part.startswith("."):
            raise refuse(f"component {part!r} starts with '.' (reserved for store internals)")
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise refuse(f"component longer than {MAX_COMPONENT_BYTES} bytes")
    return value


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid object key, else raise ``InvalidKeyError`` naming it."""
    return _check(key, "key", allow_empty=False, allow_trailing_slash=False)


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a valid listing prefix (may be empty or end with '/')."""
    return _check(prefix, "prefix", allow_empty=True, allow_trailing_slash=True)


def validate_limit(limit: object) -> int:
    """Return ``limit`` if it is a usable page size, else raise ``ValueError`` showing it."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"Invalid page limit {limit!r}: must be an int >= 1")
    return limit


def validate_max_bytes(max_bytes: object) -> int | None:
    """Return ``max_bytes`` if it is None or an int >= 0, else raise ``ValueError``."""
    if max_bytes is None:
        return None
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
        raise ValueError(f"Invalid max_bytes {max_bytes!r}: must be None or an int >= 0")
    return max_bytes


def not_found(store: ObjectStore, key: str) -> ObjectNotFoundError:
    """The error for a missing object, naming the key and the store."""
    return ObjectNotFoundError(f"No object {key!r} in {store.describe()}")


def too_large(store: ObjectStore, key: str, size: int, max_bytes: int) -> StorageError:
    """The error for an object over the caller's size bound."""
    return StorageError(
        f"Object {key!r} in {store.describe()} is {size} bytes, more than max_bytes={max_bytes}"
    )


def key_conflict(store: ObjectStore, key: str, other: str) -> StorageError:
    """The error for a key that would be both an object and a folder of other objects."""
    return StorageError(
        f"Cannot store {key!r} in {store.describe()}: it conflicts with the existing object "
        f"{other!r} (a key cannot also be a folder of other keys in this store)"
    )


def write_file_atomically(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` through a synced temp file and a rename; return the size.

    Readers of ``path`` see the old file or the whole new one, never a partial download, and
    a failure (including a missing object, raised by the first chunk) leaves ``path`` as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            # mkstemp creates 0600; downloaded objects are data other local users may read.
            os.fchmod(out.fileno(), 0o644)
            size = 0
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return size


class ObjectStore(ABC):
    """Immutable-object storage addressed by key; writes never overwrite.

    Every method validates its key first. Listing order is ascending by key, compared as
    strings (equal to S3's byte order, since keys are ASCII).
    """

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless something is there; True if this call wrote it."""

    @abstractmethod
    def put_file_if_absent(self, key: str, path: Path) -> bool:
        """Like ``put_if_absent`` with the bytes of a local file, streamed."""

    @abstractmethod
    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; ``StorageError`` if it is larger than ``max_bytes``."""

    @abstractmethod
    def get_to_file(self, key: str, path: Path) -> int:
        """Stream the object into ``path`` (atomically replaced) and return its size."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The object's key and size; ``ObjectNotFoundError`` if it is missing."""

    @abstractmethod
    def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = DEFAULT_PAGE_LIMIT
    ) -> ListPage:
        """Up to ``limit`` keys that start with ``prefix`` and sort after ``start_after``."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object if present; True if something was deleted."""

    @abstractmethod
    def describe(self) -> str:
        """A short description for logs and errors; never contains a secret."""

    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``, in ascending order, page by page."""
        validate_prefix(prefix)  # now, not at the first next(): bad input fails at the call
        return self._iter_pages(prefix)

    def _iter_pages(self, prefix: str) -> Iterator[str]:
        """The generator behind ``iter_keys``."""
        start_after = ""
        while True:
            page = self.list_page(prefix, start_after=start_after)
            yield from page.keys
            if page.next_start_after is None:
                return
            start_after = page.next_start_after

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
