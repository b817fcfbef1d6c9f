#!/usr/bin/env python3
"""Fuzz fuzzorch's reader of uploaded corpus archives with atheris.

    .venv/bin/python fuzz/fuzz_tarsafe.py -runs=200000 [corpus_dir]

Any upload must end in a list of units within the limits or a TarRefused: never another
exception. An input whose first byte is below ``len(SEEDS)`` is spliced after the start of
a real archive (plain, gzip, bzip2, xz), so that mutations reach the headers, pax records
and codecs instead of dying on the first checksum.
"""

import bz2
import gzip
import io
import lzma
import sys
import tarfile

import atheris

with atheris.instrument_imports(include=["orchestrator.tarsafe", "orchestrator.inflate"]):
    from orchestrator.tarsafe import TarLimits, TarRefused, read_corpus_tar

LIMITS = TarLimits(
    max_archive_bytes=64 * 1024,
    max_members=16,
    max_unit_bytes=4096,
    max_total_bytes=16 * 1024,
    max_ratio=50,
)


def _archive(fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        folder = tarfile.TarInfo("corpus")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for name, data in [("corpus/a", b"unit"), ("corpus/" + "n" * 120, b"x" * 600)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


_PLAIN = [_archive(tarfile.PAX_FORMAT), _archive(tarfile.GNU_FORMAT)]
SEEDS = [
    *_PLAIN,
    gzip.compress(_PLAIN[0], mtime=0),
    bz2.compress(_PLAIN[0]),
    lzma.compress(_PLAIN[0]),
]


def _upload(data: bytes) -> bytes:
    if data and data[0] < len(SEEDS):
        seed = SEEDS[data[0]]
        keep = int.from_bytes(data[1:3], "big") % (len(seed) + 1)
        return seed[:keep] + data[3:]
    return data


def TestOneInput(data: bytes) -> None:
    """Read one upload; only TarRefused may come out, and kept units respect the limits."""
    try:
        units = read_corpus_tar(io.BytesIO(_upload(data)), LIMITS)
    except TarRefused:
        return
    if len(units) > LIMITS.max_members:
        raise AssertionError(f"{len(units)} units from at most {LIMITS.max_members} members")
    if any(len(unit) > LIMITS.max_unit_bytes for unit in units):
        raise AssertionError("a unit over max_unit_bytes")
    if sum(map(len, units)) > LIMITS.max_total_bytes:
        raise AssertionError("units over max_total_bytes")
    if len(set(units)) != len(units):
        raise AssertionError("duplicate units")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
