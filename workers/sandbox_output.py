"""A child's merged output: captured within bounds, and streamed line by line as it comes.

A harness may print gigabytes. The capture keeps the head (where start-up errors are) and
the tail (where the crash and the final stats are) and counts what it dropped between; the
line splitter cuts overlong lines so the callback never sees more than a bounded string.
The pump reads the pipe on its own thread, so a slow callback delays reading (and so the
child's writes) but never the deadline, which the calling thread enforces.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

HEAD_BYTES = 64 << 10
TAIL_BYTES = 1 << 20
MAX_LINE_BYTES = 16 << 10
_READ_SIZE = 64 << 10
CUT_MARK = " [… line cut]"


class BoundedCapture:
    """Keeps the first ``head`` and the last ``tail`` bytes of a stream, counting the rest."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self._head_limit = head
        self._tail_limit = tail
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        """Add the next piece of the stream."""
        self.total += len(chunk)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            # Trim only when twice the bound, so the copying stays linear overall.
            if len(self._tail) > 2 * self._tail_limit:
                del self._tail[: -self._tail_limit]

    @property
    def dropped(self) -> int:
        """How many bytes between the head and the tail were not kept."""
        return self.total - len(self._head) - min(len(self._tail), self._tail_limit)

    def value(self) -> bytes:
        """The kept bytes; a marker line stands where bytes were dropped."""
        tail = bytes(self._tail[-self._tail_limit :]) if self._tail_limit else b""
        if self.dropped:
            marker = f"\n[… {self.dropped} bytes of output dropped …]\n".encode()
            return bytes(self._head) + marker + tail
        return bytes(self._head) + tail


class LineSplitter:
    """Turns chunks into complete lines (without the newline), cutting overlong ones."""

    def __init__(self, emit: Callable[[str], None], max_line: int = MAX_LINE_BYTES) -> None:
        self._emit = emit
        self._max = max_line
        self._partial = bytearray()
        self._cut = False  # inside an overlong line whose cut start was already emitted

    def feed(self, chunk: bytes) -> None:
        """Emit every line the chunk completes; keep the unfinished rest (bounded)."""
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            self._append(piece)
            self._flush()
        self._append(rest)

    def close(self) -> None:
        """Emit the last line if the stream did not end with a newline."""
        if self._partial:
            self._flush()

    def _append(self, piece: bytes) -> None:
        if self._cut:
            return
        self._partial += piece
        if len(self._partial) > self._max:
            del self._partial[self._max :]
            self._send(self._partial, cut=True)
            self._partial.clear()
            self._cut = True

    def _flush(self) -> None:
        if not self._cut:
            self._send(self._partial, cut=False)
        self._partial.clear()
        self._cut = False

    def _send(self, raw: bytes | bytearray, *, cut: bool) -> None:
        text = bytes(raw).decode("utf-8", "replace").removesuffix("\r")
        self._emit(text + CUT_MARK if cut else text)


class OutputPump:
    """Reads a pipe on a daemon thread into a capture and, optionally, a line callback."""

    def __init__(
        self,
        fd: int,
        on_line: Callable[[str], None] | None = None,
        capture: BoundedCapture | None = None,
    ) -> None:
        self.capture = capture or BoundedCapture()
        self._fd = fd
        self._on_line = on_line
        self._lines = LineSplitter(self._deliver) if on_line else None
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="sandbox-output", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def finish(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for end of output, then stop reading; True if it ended."""
        self._thread.join(timeout)
        ended = not self._thread.is_alive()
        if not ended:
            # A process we could not kill still holds the pipe open: stop listening to it.
            os.write(self._wake_w, b"x")
            self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        return ended

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in sel.select()}
                if self._wake_r in ready:
                    break
                chunk = os.read(self._fd, _READ_SIZE)
                if not chunk:
                    break
                self.capture.feed(chunk)
                if self._lines is not None:
                    self._lines.feed(chunk)
        if self._lines is not None:
            self._lines.close()

    def _deliver(self, line: str) -> None:
        if self._on_line is None:
            return
        try:
            self._on_line(line)
        except Exception:
            # The child must keep draining its output whatever the consumer does.
            logger.exception("sandbox output callback failed; further lines are not delivered")
            self._on_line = None
