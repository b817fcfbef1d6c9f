"""Corpora in the object store: content-addressed units under ``corpus/<repo>/<harness-id>/``.

The layout is libFuzzer's (one file per input, named by the sha1 of its content), so a
corpus folder moves between fuzzorch and the user's own tools unchanged. Every write is
put-if-absent by content address, so importing twice, or two workers racing, is harmless.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harnesses.identity import content_id, harness_id
from workers.storage.base import ObjectStore

logger = logging.getLogger(__name__)

DEFAULT_MAX_UNIT_BYTES = 1_048_576
_SHA1_HEX = frozenset("0123456789abcdef")


def corpus_prefix(repo: str, harness: str) -> str:
    """The object-store prefix of a harness's corpus (ends with ``/``)."""
    return f"corpus/{repo}/{harness_id(harness)}/"


@dataclass(frozen=True)
class TransferStats:
    """What a corpus import or export did."""

    added: int = 0
    present: int = 0
    skipped: int = 0

    def __add__(self, other: TransferStats) -> TransferStats:
        return TransferStats(
            self.added + other.added, self.present + other.present, self.skipped + other.skipped
        )


def add_units(
    store: ObjectStore,
    prefix: str,
    units: Iterable[bytes],
    *,
    max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES,
) -> TransferStats:
    """Store inputs under ``prefix`` by content address; oversized ones are skipped."""
    added = present = skipped = 0
    seen: set[str] = set()
    for data in units:
        if len(data) > max_unit_bytes:
            skipped += 1
            continue
        name = content_id(data)
        if name in seen:
            present += 1
            continue
        seen.add(name)
        if store.put_if_absent(prefix + name, data):
            added += 1
        else:
            present += 1
    return TransferStats(added, present, skipped)


def read_folder(folder: Path, *, max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES) -> Iterator[bytes]:
    """The regular files of a corpus folder, recursively; symlinks and oversize files skipped.

    Reading is bounded per file, so a file that grows while we read it cannot exhaust memory.
    """
    if not folder.is_dir():
        raise NotADirectoryError(f"corpus folder {str(folder)!r} does not exist or is not a folder")
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                logger.warning("skipping %s: not a regular file", path)
                continue
            if info.st_size > max_unit_bytes:
                logger.warning("skipping %s: %d bytes is over the unit limit", path, info.st_size)
                continue
            with open(path, "rb") as handle:
                data = handle.read(max_unit_bytes + 1)
            if len(data) <= max_unit_bytes:
                yield data


def import_folder(
    store: ObjectStore,
    prefix: str,
    folder: Path,
    *,
    max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES,
) -> TransferStats:
    """Import a corpus folder into the store."""
    return add_units(
        store,
        prefix,
        read_folder(folder, max_unit_bytes=max_unit_bytes),
        max_unit_bytes=max_unit_bytes,
    )


def export_folder(store: ObjectStore, prefix: str, folder: Path) -> TransferStats:
    """Write every unit under ``prefix`` into ``folder`` as ``<sha1>`` files.

    A stored object whose content does not match its name (corruption, or a foreign
    writer) is skipped rather than exported under a name that lies.
    """
    folder.mkdir(parents=True, exist_ok=True)
    added = present = skipped = 0
    for key in store.iter_keys(prefix):
        name = key[len(prefix) :]
        if "/" in name or len(name) != 40 or not set(name) <= _SHA1_HEX:
            skipped += 1
            continue
        target = folder / name
        if target.exists():
            present += 1
            continue
        data = store.get(key, max_bytes=DEFAULT_MAX_UNIT_BYTES * 64)
        if content_id(data) != name:
            logger.warning("skipping %s: its content does not match its name", key)
            skipped += 1
            continue
        _write_unit(folder, name, data)
        added += 1
    return TransferStats(added, present, skipped)


def sync_down(store: ObjectStore, prefix: str, folder: Path, *, max_units: int) -> int:
    """Fetch the units under ``prefix`` that ``folder`` lacks; return how many were fetched.

    The folder is a cache shared by the worker's jobs on a harness: only missing units cross
    the network, and a unit whose content does not match its name is not kept.
    """
    folder.mkdir(parents=True, exist_ok=True)
    present = {p.name for p in folder.iterdir()}
    fetched = 0
    for key in store.iter_keys(prefix):
        if len(present) >= max_units:
            logger.warning("corpus %s: capped at %d units", prefix, max_units)
            break
        name = key[len(prefix) :]
        if name in present or len(name) != 40 or not set(name) <= _SHA1_HEX:
            continue
        data = store.get(key, max_bytes=DEFAULT_MAX_UNIT_BYTES * 64)
        if content_id(data) != name:
            logger.warning("skipping %s: its content does not match its name", key)
            continue
        _write_unit(folder, name, data)
        present.add(name)
        fetched += 1
    return fetched


def upload_folder(
    store: ObjectStore,
    prefix: str,
    folder: Path,
    *,
    into: Path | None = None,
    max_unit_bytes: int = DEFAULT_MAX_UNIT_BYTES,
) -> TransferStats:
    """Store the units a run left in ``folder``; with ``into``, move them into that cache."""
    stats = TransferStats()
    if not folder.is_dir():
        return stats
    for data in read_folder(folder, max_unit_bytes=max_unit_bytes):
        stats += add_units(store, prefix, [data], max_unit_bytes=max_unit_bytes)
        if into is not None:
            _write_unit(into, content_id(data), data)
    return stats


def _write_unit(folder: Path, name: str, data: bytes) -> None:
    target = folder / name
    if target.exists():
        return
    # A temporary name of this writer's own: two jobs of one worker finish together and
    # store overlapping units into the shared corpus folder (a shared name raced).
    handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, target)  # same name, same content: the last writer is harmless
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
