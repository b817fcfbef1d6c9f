"""faulthandler stack dumps: the Python frames of a timeout or of a fatal signal.

atheris prints one on a timeout (`` === Timeout: 2s elapsed, timeout=1s ===`` then
``Current thread 0x… (most recent call first):``), and the interpreter prints one for a
fatal signal when faulthandler is enabled (``Fatal Python error: Segmentation fault``).
Frames are listed innermost first there and returned outermost first here, like tracebacks.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from harnesses.pytraceback import (
    HEAD_FRAMES,
    MAX_TYPE_CHARS,
    TAIL_FRAMES,
    Frame,
    frame_from_match,
    plain_text,
    prepare_lines,
)

ATHERIS_TIMEOUT_MARKER = "=== Timeout:"
FATAL_ERROR_PREFIX = "Fatal Python error: "

_DUMP_FRAME = re.compile(r'^\s+File "(?P<path>.*)", line (?P<line>\d+|\?\?\?) in (?P<func>.*)$')
_CURRENT = re.compile(r"^(?:Current thread 0x[0-9a-fA-F]+|Stack) \(most recent call first\):")
_OTHER_THREAD = re.compile(r"^Thread 0x[0-9a-fA-F]+ \(most recent call first\):")
# faulthandler names the signal by its strsignal() text.
_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Bus error": "SIGBUS",
    "Floating point exception": "SIGFPE",
    "Aborted": "SIGABRT",
    "Illegal instruction": "SIGILL",
}


@dataclass(frozen=True)
class StackDump:
    """A faulthandler dump: the fatal error line if any, its signal name, the frames."""

    fatal_error: str | None
    signal: str | None
    frames: tuple[Frame, ...]  # outermost first
    frames_omitted: int = 0


def signal_for_fatal_error(description: str) -> str | None:
    """The signal name for faulthandler's description of it (``Segmentation fault``)."""
    return _SIGNALS.get(description.strip())


def _frames_from(lines: list[str], start: int) -> tuple[tuple[Frame, ...], int]:
    # Listed innermost first: keep the first TAIL_FRAMES and the last HEAD_FRAMES seen.
    innermost: list[Frame] = []
    outermost: deque[Frame] = deque(maxlen=HEAD_FRAMES)
    count = 0
    for line in lines[start:]:
        match = _DUMP_FRAME.match(line)
        if match is None:
            if line.strip() in ("", "...", "<no Python frame>"):
                continue
            break
        count += 1
        if len(innermost) < TAIL_FRAMES:
            innermost.append(frame_from_match(match))
        else:
            outermost.append(frame_from_match(match))
    frames = (*reversed(outermost), *reversed(innermost))
    return frames, count - len(frames)


def parse_stack_dump(text: str) -> StackDump | None:
    """The last faulthandler dump in ``text`` (its current thread), or None."""
    lines = prepare_lines(text)
    region = 0
    fatal: str | None = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(ATHERIS_TIMEOUT_MARKER):
            region, fatal = index + 1, None
        elif line.startswith(FATAL_ERROR_PREFIX):
            region = index + 1
            fatal = plain_text(line[len(FATAL_ERROR_PREFIX) :], MAX_TYPE_CHARS)
    current = other = -1
    for index in range(region, len(lines)):
        if current < 0 and _CURRENT.match(lines[index]):
            current = index
        elif other < 0 and _OTHER_THREAD.match(lines[index]):
            other = index
    header = current if current >= 0 else other
    if header < 0:
        return None
    frames, omitted = _frames_from(lines, header + 1)
    signal = signal_for_fatal_error(fatal) if fatal else None
    return StackDump(fatal, signal, frames, omitted)
