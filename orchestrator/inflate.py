"""The bytes of an uploaded archive, decompressed if need be, with every cost bounded.

The compression is told by the first bytes (gzip, bzip2 or xz; anything else is read as
it is). Compressed data is inflated at most ``_CHUNK`` bytes at a time and counted as it
comes, so that a decompression bomb is refused by its ratio long before it fills memory;
the compressed bytes read from the client are counted against their own limit. At the end
the data is inflated to its last byte, so the codec checks its own checksums, and only a
bounded amount of tar record padding may follow the end-of-archive block.

Errors are ``InflateRefused`` with a rule name; ``orchestrator.tarsafe`` turns them into
``TarRefused``, saying where in the archive they happened.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from orchestrator.errors import FuzzorchError

RATIO_FLOOR = 1024 * 1024  # the ratio rule applies once this much has been inflated
_CHUNK = 64 * 1024  # the most inflated at once, so a bomb is counted while inflating
_INPUT_CHUNK = 16 * 1024  # compressed bytes per read; the ratio is exact to this much
_XZ_MEMLIMIT = 128 * 1024 * 1024  # xz -9 needs 65 MiB; a header may ask for 1.5 GiB
_TRAILER_BYTES = 1024 * 1024  # record padding after the end block (tar -b2048 is 1 MiB)
_MAGIC_BYTES = 6  # the longest magic number below (xz's)


class InflateRefused(FuzzorchError, ValueError):
    """The upload breaks a rule of this layer; ``rule`` names it, ``detail`` says how.

    Rules: ``empty``, ``unreadable``, ``max_archive_bytes``, ``truncated``, ``corrupt`` and
    ``max_ratio``.
    """

    exit_code = 2

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


class Source(Protocol):
    def read(self, size: int) -> bytes:
        """At most ``size`` bytes (``size`` > 0); empty only at the end."""
        ...


class Reader(Source, Protocol):
    def finish(self) -> None:
        """Check what follows the end-of-archive block."""
        ...


def open_upload(stream: BinaryIO, *, max_archive_bytes: int, max_ratio: int) -> Reader:
    """The upload's archive bytes, inflated if its magic bytes name a compression."""
    upload = _Upload(stream, max_archive_bytes)
    head = read_exact(upload, _MAGIC_BYTES)
    if not head:
        raise InflateRefused("empty", "the upload is empty")
    for codec in _CODECS:
        if head.startswith(codec.magic):
            return _Inflating(upload, head, codec, max_ratio)
    return _Plain(upload, head)


def read_exact(reader: Source, size: int) -> bytes:
    """``size`` bytes, or fewer only where the stream ends."""
    parts: list[bytes] = []
    while size > 0:
        chunk = reader.read(min(size, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


class _Upload:
    """The client's bytes, counted; reading past ``max_archive_bytes`` is refused."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._stream.read(min(size, self._limit - self.count + 1))
        except OSError as error:
            raise InflateRefused("unreadable", f"reading the upload failed: {error}") from error
        self.count += len(data)
        if self.count > self._limit:
            raise InflateRefused(
                "max_archive_bytes", f"the upload is over max_archive_bytes={self._limit}"
            )
        return data


class _Buffered:
    """Hands out what ``_fill`` produces in reads of any size, without copying the rest."""

    def __init__(self, head: bytes) -> None:
        self._buffer = head
        self._offset = 0

    def read(self, size: int) -> bytes:
        if self._offset >= len(self._buffer):
            self._buffer, self._offset = self._fill(), 0
        out = self._buffer[self._offset : self._offset + size]
        self._offset += len(out)
        return out

    def _fill(self) -> bytes:
        raise NotImplementedError


class _Plain(_Buffered):
    """An uncompressed upload, starting with the bytes read to sniff its format."""

    def __init__(self, upload: _Upload, head: bytes) -> None:
        super().__init__(head)
        self._upload = upload

    def _fill(self) -> bytes:
        return self._upload.read(_CHUNK)

    def finish(self) -> None:
        """Nothing to check: plain tar has no checksum over the data, and padding may follow."""


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def needs_input(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Gunzip:
    """zlib's gzip decoder behind the bz2/lzma interface (``needs_input``, buffered input)."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._full = False

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    @property
    def needs_input(self) -> bool:
        # A call that filled max_length may have more output pending even without input.
        return not self._tail and not self._full

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._zlib.decompress(self._tail + data, max_length)
        self._tail = self._zlib.unconsumed_tail
        self._full = len(out) == max_length
        return out


def _unxz() -> _Decompressor:
    return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMLIMIT)


@dataclass(frozen=True)
class _Codec:
    name: str
    magic: bytes
    new: Callable[[], _Decompressor]


_CODECS = (
    _Codec("gzip", b"\x1f\x8b", _Gunzip),
    _Codec("bzip2", b"BZh", bz2.BZ2Decompressor),
    _Codec("xz", b"\xfd7zXZ\x00", _unxz),
)
_CODEC_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError)


class _Inflating(_Buffered):
    """A compressed upload, inflated ``_CHUNK`` bytes at a time; refuses a bomb early."""

    def __init__(self, upload: _Upload, head: bytes, codec: _Codec, max_ratio: int) -> None:
        super().__init__(b"")
        self._upload = upload
        self._pending = head
        self._codec = codec
        self._max_ratio = max_ratio
        self._decompressor = codec.new()
        self.inflated = 0

    def _fill(self) -> bytes:
        while True:
            if self._decompressor.eof:
                # Concatenated streams (pigz, pbzip2, xz -T) continue with a fresh decoder.
                self._pending = self._decompressor.unused_data or self._upload.read(_INPUT_CHUNK)
                if not self._pending:
                    return b""
                self._decompressor = self._codec.new()
            if not self._pending and self._decompressor.needs_input:
                self._pending = self._upload.read(_INPUT_CHUNK)
                if not self._pending:
                    raise InflateRefused("truncated", f"the {self._codec.name} data ends early")
            try:
                out = self._decompressor.decompress(self._pending, _CHUNK)
            except _CODEC_ERRORS as error:
                detail = f"corrupt {self._codec.name} data ({error})"
                raise InflateRefused("corrupt", detail) from error
            self._pending = b""
            if out:
                self._count(len(out))
                return out

    def finish(self) -> None:
        """Inflate to the end of the data, so that the codec's own checksums are verified."""
        after = 0
        while chunk := self.read(_CHUNK):
            after += len(chunk)
            if after > _TRAILER_BYTES:
                detail = f"over {_TRAILER_BYTES} bytes follow the end-of-archive block"
                raise InflateRefused("corrupt", detail)

    def _count(self, size: int) -> None:
        self.inflated += size
        read = self._upload.count
        if self.inflated > RATIO_FLOOR and self.inflated > self._max_ratio * read:
            raise InflateRefused(
                "max_ratio",
                f"the {self._codec.name} data inflates more than max_ratio={self._max_ratio}"
                f" times ({self.inflated} bytes from {read}); a decompression bomb?",
            )
