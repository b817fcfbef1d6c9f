"""A local spool for objects the store could not take: nothing found is lost to an outage.

A crash's testcase is its evidence. When the object store is down (after the store's own
retries), the bytes are kept on the worker's disk under their key and the crash is
announced anyway (its key is a content address, so it is known before the upload); the
spool is flushed at the end of every job and before the next one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from workers.errors import StorageError, TransientStorageError
from workers.storage.base import ObjectStore, validate_key

logger = logging.getLogger(__name__)


class Spool:
    """Objects waiting for the store, one file per key under ``root``."""

    def __init__(self, store: ObjectStore, root: Path) -> None:
        self.store = store
        self.root = root

    def put(self, key: str, data: bytes) -> bool:
        """Store now, or keep locally when the store is unavailable; True if stored now."""
        try:
            self.store.put_if_absent(key, data)
            return True
        except TransientStorageError as exc:
            path = self.root / validate_key(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
            logger.warning("object store unavailable; kept %s locally to send later: %s", key, exc)
            return False

    def pending(self) -> list[str]:
        """Keys waiting to be sent."""
        if not self.root.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def flush(self) -> int:
        """Send what waits; return how many were sent (the rest stay for the next flush)."""
        sent = 0
        for key in self.pending():
            path = self.root / key
            try:
                self.store.put_if_absent(key, path.read_bytes())
            except StorageError as exc:
                logger.warning("object store still unavailable (%s); %s waits", exc, key)
                break
            path.unlink(missing_ok=True)
            sent += 1
        if sent:
            logger.info("sent %d spooled object(s)", sent)
        return sent
