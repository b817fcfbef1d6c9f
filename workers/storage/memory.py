"""An in-memory object store: the fake other components' unit tests run against.

It is deliberately as strict as the strictest real store (the filesystem one): a key that is
also the folder of other keys (``a/b`` beside ``a/b/c``) is refused, so code that passes its
tests here also works on a directory tree.
"""

from __future__ import annotations

import bisect
import threading
from pathlib import Path

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

_CHUNK = 1 << 20


class MemoryObjectStore(ObjectStore):
    """A dict of immutable byte strings behind one lock."""

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}
        self._sorted: list[str] = []  # the keys of _objects, kept sorted for listing

    def describe(self) -> str:
        """A short description for logs and errors."""
        return f"memory store {self._name!r}"

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless something is there; True if this call wrote it."""
        validate_key(key)
        data = bytes(data)
        with self._lock:
            if key in self._objects:
                return False
            self._check_conflicts(key)
            self._objects[key] = data
            bisect.insort(self._sorted, key)
            return True

    def put_file_if_absent(self, key: str, path: Path) -> bool:
        """Like ``put_if_absent`` with the bytes of a local file."""
        validate_key(key)
        if self.exists(key):
            return False
        return self.put_if_absent(key, Path(path).read_bytes())

    def get(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; ``StorageError`` if it is larger than ``max_bytes``."""
        validate_key(key)
        validate_max_bytes(max_bytes)
        with self._lock:
            data = self._objects.get(key)
        if data is None:
            raise not_found(self, key)
        if max_bytes is not None and len(data) > max_bytes:
            raise too_large(self, key, len(data), max_bytes)
        return data

    def get_to_file(self, key: str, path: Path) -> int:
        """Write the object to ``path`` atomically and return its size."""
        data = self.get(key)
        return write_file_atomically(
            Path(path), (data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK))
        )

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key``."""
        validate_key(key)
        with self._lock:
            return key in self._objects

    def stat(self, key: str) -> ObjectInfo:
        """The object's key and size."""
        return ObjectInfo(key=key, size=len(self.get(key)))

    def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = DEFAULT_PAGE_LIMIT
    ) -> ListPage:
        """Up to ``limit`` keys that start with ``prefix`` and sort after ``start_after``."""
        validate_prefix(prefix)
        validate_prefix(start_after)
        validate_limit(limit)
        with self._lock:
            index = max(
                bisect.bisect_right(self._sorted, start_after),
                bisect.bisect_left(self._sorted, prefix),
            )
            keys: list[str] = []
            more = False
            for key in self._sorted[index:]:
                if not key.startswith(prefix):
                    break
                if len(keys) == limit:
                    more = True
                    break
                keys.append(key)
        return ListPage(tuple(keys), keys[-1] if more else None)

    def delete(self, key: str) -> bool:
        """Remove the object if present; True if something was deleted."""
        validate_key(key)
        with self._lock:
            if self._objects.pop(key, None) is None:
                return False
            del self._sorted[bisect.bisect_left(self._sorted, key)]
            return True

    def _check_conflicts(self, key: str) -> None:
        """Refuse a key that is a folder of stored keys, or lies inside a stored key."""
        parts = key.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            if ancestor in self._objects:
                raise key_conflict(self, key, ancestor)
        folder = key + "/"
        index = bisect.bisect_left(self._sorted, folder)
        if index < len(self._sorted) and self._sorted[index].startswith(folder):
            raise key_conflict(self, key, self._sorted[index])
