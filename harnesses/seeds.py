"""Seed corpora and dictionaries that ship with a harness (OSS-Fuzz conventions).

For ``fuzz/fuzz_x.py`` the seeds are ``fuzz/fuzz_x_seed_corpus/`` or
``fuzz/fuzz_x_seed_corpus.zip`` and the dictionary ``fuzz/fuzz_x.dict``, unless
``[tool.fuzzorch]`` names others. Archives come from untrusted repositories, so they are
read with limits: member count, member and total size, no links, no paths outside.
"""

from __future__ import annotations

import io
import posixpath
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from harnesses.errors import HarnessError
from harnesses.model import Harness, HarnessKind
from harnesses.tree import TreeFile


class SeedArchiveError(HarnessError, ValueError):
    """A seed archive breaks a limit or holds something we refuse to unpack."""


@dataclass(frozen=True)
class SeedLimits:
    """How much of a seed corpus fuzzorch takes in."""

    max_members: int = 10_000
    max_unit_bytes: int = 1_048_576
    max_total_bytes: int = 256 * 1_048_576
    max_archive_bytes: int = 256 * 1_048_576


@dataclass(frozen=True)
class SeedSources:
    """Where a harness's seeds and dictionary live in its repository."""

    seed_dir: str | None = None
    seed_zip: str | None = None
    dictionary: str | None = None


def seed_sources(harness: Harness, files: dict[str, TreeFile]) -> SeedSources:
    """The seed folder or archive and the dictionary of a harness, if it has any."""
    if harness.kind is not HarnessKind.ATHERIS and harness.options.seeds is None:
        return SeedSources(dictionary=harness.options.dictionary)
    stem = harness.path[: -len(".py")]
    configured = harness.options.seeds
    seed_dir = seed_zip = None
    if configured is not None:
        if configured.endswith(".zip"):
            seed_zip = configured if configured in files else None
        elif any(path.startswith(configured + "/") for path in files):
            seed_dir = configured
    else:
        if f"{stem}_seed_corpus.zip" in files:
            seed_zip = f"{stem}_seed_corpus.zip"
        if any(path.startswith(f"{stem}_seed_corpus/") for path in files):
            seed_dir = f"{stem}_seed_corpus"
    dictionary = harness.options.dictionary
    if dictionary is None and f"{stem}.dict" in files:
        dictionary = f"{stem}.dict"
    return SeedSources(seed_dir=seed_dir, seed_zip=seed_zip, dictionary=dictionary)


def files_in(folder: str, files: dict[str, TreeFile]) -> list[TreeFile]:
    """Regular files below ``folder`` (symlinks are never seeds: they could point anywhere)."""
    prefix = folder.rstrip("/") + "/"
    return [
        f
        for path, f in sorted(files.items())
        if path.startswith(prefix) and f.symlink_target is None
    ]


def zip_units(data: bytes, limits: SeedLimits = SeedLimits()) -> Iterator[bytes]:
    """The inputs in a seed archive, refusing links, escapes, bombs and oversize members."""
    if len(data) > limits.max_archive_bytes:
        raise SeedArchiveError(
            f"seed archive is {len(data)} bytes; the limit is {limits.max_archive_bytes}"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise SeedArchiveError(f"not a zip archive: {exc}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > limits.max_members:
            raise SeedArchiveError(
                f"seed archive has {len(members)} members; the limit is {limits.max_members}"
            )
        total = 0
        for member in members:
            _check_member(member)
            if member.file_size > limits.max_unit_bytes:
                continue  # too large to be a useful unit; libFuzzer would truncate it anyway
            total += member.file_size
            if total > limits.max_total_bytes:
                raise SeedArchiveError(
                    f"seed archive unpacks to more than {limits.max_total_bytes} bytes"
                )
            yield _read_member(archive, member, limits.max_unit_bytes)


def _check_member(member: zipfile.ZipInfo) -> None:
    name = member.filename
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SeedArchiveError(f"seed archive member {name!r} is a symlink")
    normalized = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or normalized.startswith("..") or ":" in name.split("/")[0]:
        raise SeedArchiveError(f"seed archive member {name!r} points outside the archive")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    # The declared size can lie (a zip bomb); read at most one byte past the limit.
    try:
        with archive.open(member) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
        # Corrupt data, an unsupported compression method, or an encrypted member.
        raise SeedArchiveError(f"seed archive member {member.filename!r}: {exc}") from None
    if len(data) > limit:
        raise SeedArchiveError(
            f"seed archive member {member.filename!r} inflates past its declared size"
        )
    return data
