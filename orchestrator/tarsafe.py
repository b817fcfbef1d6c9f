"""Corpus tar archives in and out of the HTTP API; uploads are hostile input.

Uploads are parsed here rather than by ``tarfile``'s reader, because on the CPython this
project runs (3.11.7) that reader ends silently at a corrupt header after the first (so a
damaged upload would be half-imported), recurses once per chained GNU long-name or pax
header (``RecursionError``), parses pax records with a regex that is quadratic in runs of
digits (CVE-2024-6232), keeps every header it has read in ``TarFile.members``, and in
stream mode inflates each compressed chunk without an output bound (10 KiB of bzip2 can
become gigabytes in one call). The format subset needed for regular files is small:
ustar/GNU/v7 headers, pax ``x``/``g`` records and GNU ``L``/``K`` long names.

The bytes come through ``orchestrator.inflate``, which decompresses them within bounds;
its refusals become ``TarRefused`` here, naming the member they happened in or after.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import BinaryIO

from orchestrator.errors import FuzzorchError
from orchestrator.inflate import InflateRefused, Reader, open_upload, read_exact

BLOCK = 512
MAX_NAME_CHARS = 4096
# Extended headers (pax records, GNU long names) in front of one member: a 4096-character
# name needs about 4.2 KiB, so this leaves room for xattrs while bounding the parse.
MAX_HEADER_BYTES = 64 * 1024
_CHUNK = 64 * 1024  # an export is yielded in pieces of about this size
_ZERO_BLOCK = bytes(BLOCK)
_RECORD = 20 * BLOCK  # tar pads archives to whole records, as GNU tar and tarfile do

_REGULAR = {b"0", b"\0", b"7"}  # regular, old-style regular, contiguous (POSIX: regular)
_DIRECTORY = b"5"
_EXTENDED = {b"x", b"X", b"g", b"L", b"K"}
_REFUSED_TYPES = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "character device",
    b"4": "block device",
    b"6": "FIFO",
    b"S": "GNU sparse file",
    b"V": "GNU volume label",
    b"M": "GNU multi-volume continuation",
    b"D": "GNU dump directory",
    b"N": "GNU old long name",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_OCTAL = re.compile(rb"[0-7]+")
_PAX_LENGTH = re.compile(rb"([0-9]{1,20}) ")
_PAX_SIZE = re.compile(rb"[0-9]{1,20}")
_UNIT_NAME = re.compile(r"[0-9A-Za-z._-]{1,100}")


@dataclass(frozen=True)
class TarLimits:
    """What one upload may cost; every field is a positive number of bytes or members."""

    max_archive_bytes: int = 256 * 1024 * 1024  # compressed bytes read from the stream
    max_members: int = 100_000
    max_unit_bytes: int = 1024 * 1024  # libFuzzer's default max_len is far lower
    max_total_bytes: int = 512 * 1024 * 1024  # uncompressed sum of units
    max_ratio: int = 200  # uncompressed/compressed, once over inflate.RATIO_FLOOR

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"Invalid TarLimits.{field.name} {value!r}: not a positive int")


DEFAULT_LIMITS = TarLimits()


class TarRefused(FuzzorchError, ValueError):
    """An uploaded archive breaks a rule; ``rule`` names it, ``member`` is the member or None.

    Rules: ``name``, ``type``, ``empty``, ``truncated``, ``corrupt``, ``unreadable``,
    ``max_header_bytes`` and each ``TarLimits`` field.
    """

    exit_code = 2

    def __init__(
        self, rule: str, detail: str, member: str | None = None, *, near: str | None = None
    ) -> None:
        where = f"member {_show(member)}" if member is not None else "archive"
        where += f" ({near})" if near else ""
        super().__init__(f"Refused {where}: {detail}")
        self.rule = rule
        self.detail = detail
        self.member = member


def _show(name: str) -> str:
    """``repr`` of a member name, cut short so a hostile name cannot flood a log line."""
    if len(name) <= 120:
        return repr(name)
    return f"{name[:100]!r}… ({len(name)} characters)"


def read_corpus_tar(stream: BinaryIO, limits: TarLimits = DEFAULT_LIMITS) -> list[bytes]:
    """Every distinct unit of an uploaded tar, in first-seen order, or TarRefused for all."""
    try:
        reader = open_upload(
            stream, max_archive_bytes=limits.max_archive_bytes, max_ratio=limits.max_ratio
        )
    except InflateRefused as error:
        raise TarRefused(error.rule, error.detail) from error
    return _read_units(reader, limits)


def write_corpus_tar(units: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """A plain ustar archive of ``(name, data)`` pairs in ~64 KiB chunks, byte-for-byte stable.

    Names are flat file names (libFuzzer's sha1 hex); mtime, uid and gid are 0, mode 0644
    and owner names empty, so the same units always give the same bytes.
    """
    pending = bytearray()
    written = 0
    for name, data in units:
        if not _UNIT_NAME.fullmatch(name) or name in {".", ".."}:
            raise ValueError(f"Invalid unit name {name!r}: not a flat name of [0-9A-Za-z._-]")
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
        pending += info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")
        pending += data
        pending += bytes(_padding(len(data)))
        written += BLOCK + len(data) + _padding(len(data))
        if len(pending) >= _CHUNK:
            yield bytes(pending)
            pending.clear()
    end = 2 * BLOCK
    end += -(written + end) % _RECORD
    yield bytes(pending) + bytes(end)


def _padding(size: int) -> int:
    return -size % BLOCK


@dataclass(frozen=True)
class _Member:
    name: str
    type: bytes
    size: int
    sparse: bool


def _read_units(reader: Reader, limits: TarLimits) -> list[bytes]:
    units: dict[bytes, None] = {}  # insertion-ordered set: dedupes, keeps first-seen order
    members = total = 0
    near = None
    try:
        while (member := _next_member(reader)) is not None:
            members += 1
            near = f"in member {_show(member.name)}"
            if members > limits.max_members:
                detail = f"the archive has more than max_members={limits.max_members} members"
                raise TarRefused("max_members", detail, member.name)
            _check_member(member)
            if member.type != _DIRECTORY:
                _check_size(member, total, limits)
                data = _read_data(reader, member)
                total += len(data)
                units.setdefault(data)
            near = f"after member {_show(member.name)}"
        reader.finish()
    except TarRefused as error:
        if error.member is not None or near is None:
            raise
        raise TarRefused(error.rule, error.detail, near=near) from error
    except InflateRefused as error:
        raise TarRefused(error.rule, error.detail, near=near) from error
    return list(units)


def _check_size(member: _Member, total: int, limits: TarLimits) -> None:
    if member.size > limits.max_unit_bytes:
        detail = f"{member.size} bytes is over max_unit_bytes={limits.max_unit_bytes}"
        raise TarRefused("max_unit_bytes", detail, member.name)
    if total + member.size > limits.max_total_bytes:
        detail = f"units add up to over max_total_bytes={limits.max_total_bytes}"
        raise TarRefused("max_total_bytes", detail, member.name)


def _check_member(member: _Member) -> None:
    name = member.name
    problem = None
    if len(name) > MAX_NAME_CHARS:
        problem = f"its name is longer than {MAX_NAME_CHARS} characters"
    elif _CONTROL.search(name):
        problem = "its name contains a NUL or control character"
    elif name.startswith("/"):
        problem = "its name is absolute"
    elif ".." in name.split("/"):
        problem = "its name has a '..' component"
    if problem is not None:
        raise TarRefused("name", problem, name)
    kind = None
    if member.sparse:
        kind = "a sparse file (GNU.sparse pax records)"
    elif member.type in _REFUSED_TYPES:
        kind = f"a {_REFUSED_TYPES[member.type]}"
    elif member.type not in _REGULAR and member.type != _DIRECTORY:
        kind = f"of unknown type {member.type!r}"
    if kind is not None:
        raise TarRefused("type", f"it is {kind}, not a regular file or directory", name)


def _read_data(reader: Reader, member: _Member) -> bytes:
    data = read_exact(reader, member.size)
    if len(data) < member.size:
        detail = f"its data ends after {len(data)} of {member.size} bytes"
        raise TarRefused("truncated", detail, member.name)
    padding = _padding(member.size)
    if len(read_exact(reader, padding)) < padding:
        raise TarRefused("truncated", "the archive ends inside its padding", member.name)
    return data


def _next_member(reader: Reader) -> _Member | None:
    """The next member header with its extended headers applied; None at the end block."""
    name: str | None = None
    size: int | None = None
    sparse = pending = False
    spent = 0
    while True:
        block = read_exact(reader, BLOCK)
        if len(block) < BLOCK:
            raise TarRefused("truncated", "the archive ends before its end-of-archive block")
        if block == _ZERO_BLOCK:
            if pending:
                raise TarRefused("corrupt", "an extended header is not followed by a member")
            return None
        header = _parse_header(block)
        if header.type not in _EXTENDED:
            name = header.name if name is None else name
            kind = header.type
            if kind == b"\0" and name.endswith("/"):  # old tars mark a folder by its slash
                kind = _DIRECTORY
            return _Member(name, kind, header.size if size is None else size, sparse)
        spent += BLOCK + header.size + _padding(header.size)
        if spent > MAX_HEADER_BYTES:
            detail = f"extended headers of over MAX_HEADER_BYTES={MAX_HEADER_BYTES} bytes"
            raise TarRefused("max_header_bytes", detail, header.name)
        payload = _read_data(reader, header)
        pending = pending or header.type != b"g"
        if header.type == b"L":
            name = _text(payload.split(b"\0", 1)[0])
        elif header.type in {b"x", b"X"}:
            records = _pax_records(payload, header.name)
            name = _text(records["path"]) if "path" in records else name
            size = _pax_size(records, header.name) if "size" in records else size
            sparse = sparse or any(key.startswith("GNU.sparse.") for key in records)
        elif header.type == b"g":
            _pax_records(payload, header.name)  # validated; global defaults mean nothing here


def _parse_header(block: bytes) -> _Member:
    name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0" and prefix:  # POSIX ustar; GNU keeps times there
        name = prefix + b"/" + name
    shown = _text(name)
    checksum = _number(block[148:156])
    unsigned = sum(block[:148]) + sum(block[156:]) + 8 * 0x20
    signed = unsigned - 256 * sum(1 for byte in block[:148] + block[156:] if byte > 127)
    if checksum is None or checksum not in {unsigned, signed}:
        raise TarRefused("corrupt", "bad header checksum (not a tar archive?)")
    size = _number(block[124:136])
    if size is None or size < 0:
        raise TarRefused("corrupt", f"bad size field {block[124:136]!r}", shown)
    return _Member(shown, block[156:157], size, sparse=False)


def _number(field: bytes) -> int | None:
    """A numeric header field: octal text or GNU base-256 (sign in the first byte); None if bad."""
    if field[0] == 0x80:
        return int.from_bytes(field[1:], "big")
    if field[0] == 0xFF:
        return int.from_bytes(field, "big", signed=True)
    digits = field.split(b"\0", 1)[0].strip()
    if not digits:
        return 0
    return int(digits, 8) if _OCTAL.fullmatch(digits) else None


def _pax_records(payload: bytes, member: str) -> dict[str, bytes]:
    """``"<length> <keyword>=<value>\\n"`` records, each checked; a linear-time parse."""
    records: dict[str, bytes] = {}
    position = 0
    while position < len(payload) and payload[position]:
        match = _PAX_LENGTH.match(payload, position)
        end = position + int(match[1]) if match else 0
        if not match or end <= match.end() or end > len(payload) or payload[end - 1] != 0x0A:
            raise TarRefused("corrupt", f"malformed pax record at byte {position}", member)
        keyword, equals, value = payload[match.end() : end - 1].partition(b"=")
        if not equals or not keyword:
            raise TarRefused("corrupt", f"malformed pax record at byte {position}", member)
        records[_text(keyword)] = value
        position = end
    if payload[position:].strip(b"\0"):
        raise TarRefused("corrupt", f"malformed pax record at byte {position}", member)
    return records


def _pax_size(records: dict[str, bytes], member: str) -> int:
    value = records["size"]
    if not _PAX_SIZE.fullmatch(value):
        raise TarRefused("corrupt", f"bad pax size {value[:30]!r}", member)
    return int(value)


def _text(raw: bytes) -> str:
    # Like tarfile: names are UTF-8, and bytes that are not survive as lone surrogates.
    return raw.decode("utf-8", "surrogateescape")
