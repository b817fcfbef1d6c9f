"""Python tracebacks in crash output: the crash's own exception, its frames and its chain.

The text comes from an untrusted harness, so parsing never raises, keeps bounded amounts
(frames, chain links, message length) and does linear work. A harness can always print a
convincing fake traceback: what is parsed here describes a crash, while the worker takes
artifact files and exit codes as the ground truth that one happened.

Which traceback is "the crash's own" (the rules the signature depends on):

- when a marker is present the region after the last one is searched: fuzzorch's shim
  marker (printed with the full chain) wins over atheris' ``=== Uncaught Python
  exception: ===`` (atheris prints neither the cause of a chained exception nor the members
  of an exception group);
- in that region the first traceback not preceded by ``Exception ignored in`` (or another
  interpreter noise header) is the crash; the noise may come before or after it;
- in a chain the first traceback printed, the innermost cause, is the main exception and
  the others become ``chain`` links in printed order;
- an exception group (the boxed ``+-+----`` form of Python 3.11, from the interpreter or
  ``traceback``) yields its first leaf: descend into sub-exception 1 until it is not a
  group. The groups become ``group`` links, innermost first.

A cause's (or a leaf's) printed traceback starts at the frame that caught it: the frames
above that one are printed only with the exception that follows it in the chain (or with
the group). The main exception's ``frames`` are therefore joined into its whole stack (see
``join_stacks``), from the outermost link inwards; links keep the frames printed for them.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass

from harnesses.exceptiongroup import unbox_first_sub

ATHERIS_EXCEPTION_MARKER = "=== Uncaught Python exception: ==="
#: What the runner shim prints on stderr before ``traceback.print_exception(exc)``.
SHIM_EXCEPTION_MARKER = "=== fuzzorch: uncaught exception ==="

MAX_TEXT_CHARS = 4_000_000
MAX_LINE_CHARS = 4096
MAX_MESSAGE_CHARS = 500
MAX_TYPE_CHARS = 200
HEAD_FRAMES = 20
TAIL_FRAMES = 200
MAX_CHAIN_LINKS = 16
MAX_GROUP_DEPTH = 32
# A message longer than this many lines ends the search for a chain separator after it.
MAX_CONTINUATION_LINES = 2000

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
_FRAME = re.compile(r'^\s+File "(?P<path>.*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
_TRACEBACK = re.compile(r"^(?:Exception Group )?Traceback \(most recent call last\):\s*$")
_BOXED_GROUP = re.compile(r"^(?P<indent> *)\+ Exception Group Traceback \(most recent call")
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_LIBFUZZER = re.compile(r"^==\d+== |^SUMMARY: libFuzzer: ")
_NOISE_HEADERS = ("Exception ignored in", "Error in atexit.", "Error in sys.excepthook")
_STOP_HEADERS = ("Fatal Python error:", "Current thread 0x")


class Relation(enum.StrEnum):
    """How a chain link relates to the exception printed just before it."""

    CAUSE = "cause"  # "The above exception was the direct cause of the following exception"
    CONTEXT = "context"  # "During handling of the above exception, another exception occurred"
    GROUP = "group"  # an exception group that holds the main exception


_SEPARATORS = {
    "The above exception was the direct cause of the following exception:": Relation.CAUSE,
    "During handling of the above exception, another exception occurred:": Relation.CONTEXT,
}


@dataclass(frozen=True)
class Frame:
    """One traceback frame as printed; ``function`` is empty for a SyntaxError's location."""

    path: str
    line: int | None
    function: str
    text: str | None = None


@dataclass(frozen=True)
class ChainLink:
    """Another exception printed with the crash: a later link of its chain, or a group."""

    relation: Relation
    exception_type: str
    message: str
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class ParsedException:
    """The crash's exception: type as printed, first message line (plain text), frames."""

    exception_type: str
    message: str
    # The whole stack, outermost first, capped (see frames_omitted): for a chained cause or
    # a group leaf, the later links' (groups') frames down to the one that caught it, then
    # its own printed frames.
    frames: tuple[Frame, ...]
    chain: tuple[ChainLink, ...] = ()
    frames_omitted: int = 0


def plain_text(text: str, limit: int) -> str:
    """``text`` without escape sequences, control characters or lone surrogates, bounded."""
    text = _ANSI.sub("", text[: limit * 4])
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(c for c in text if c.isprintable() or c == "\t").strip()[:limit]


def prepare_lines(text: str) -> list[str]:
    """Split untrusted output into bounded lines without colour escapes."""
    if len(text) > MAX_TEXT_CHARS:
        half = MAX_TEXT_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    return [_ANSI.sub("", line[:MAX_LINE_CHARS]).rstrip("\r") for line in text.split("\n")]


class FrameCollector:
    """Keeps the outermost HEAD_FRAMES and innermost TAIL_FRAMES frames of a long stack."""

    def __init__(self) -> None:
        self.head: list[Frame] = []
        self.tail: deque[Frame] = deque(maxlen=TAIL_FRAMES)
        self.count = 0

    def add(self, frame: Frame) -> None:
        """Record the next frame, outermost first."""
        self.count += 1
        if len(self.head) < HEAD_FRAMES:
            self.head.append(frame)
        else:
            self.tail.append(frame)

    def frames(self) -> tuple[Frame, ...]:
        """The kept frames, outermost first."""
        return (*self.head, *self.tail)

    def omitted(self) -> int:
        """How many frames were dropped from the middle."""
        return self.count - len(self.head) - len(self.tail)


def join_stacks(
    outer: tuple[Frame, ...], inner: tuple[Frame, ...], outer_omitted: int = 0
) -> tuple[tuple[Frame, ...], int]:
    """``inner``'s whole stack from the whole stack of the exception raised while it was
    handled (or of its group), capped, and how many of ``outer_omitted`` lie above the join.

    ``inner``'s first frame caught it and was still running when ``outer`` was raised: it is
    the innermost outer frame with the same path and function (not line: ``try`` body
    against handler), whose outer copy gives way to ``inner``. With no such frame (a stored
    exception raised elsewhere, an asyncio task's leaf, text cut short) the outer frames are
    all kept, as they are for an ``inner`` without frames (a leaf that was never raised).
    """
    cut = len(outer)
    if inner:
        catcher = (inner[0].path, inner[0].function)
        for index in range(len(outer) - 1, -1, -1):
            if (outer[index].path, outer[index].function) == catcher:
                cut = index
                break
    collector = FrameCollector()
    for frame in (*outer[:cut], *inner):
        collector.add(frame)
    # A capped stack's missing frames follow its head: they are above a join past the head.
    lost = outer_omitted if cut >= HEAD_FRAMES else 0
    return collector.frames(), collector.omitted() + lost


def frame_from_match(match: re.Match[str]) -> Frame:
    """A Frame from a match with ``path``, ``line`` and ``func`` groups."""
    line = match.group("line")
    return Frame(
        path=plain_text(match.group("path"), MAX_LINE_CHARS),
        line=int(line) if line.isdigit() and len(line) < 12 else None,
        function=plain_text(match.group("func") or "", MAX_TYPE_CHARS),
    )


def _starts_block(line: str) -> bool:
    return bool(_TRACEBACK.match(line) or _BOXED_GROUP.match(line))


def _is_marker(line: str) -> bool:
    stripped = line.strip()
    return stripped in (ATHERIS_EXCEPTION_MARKER, SHIM_EXCEPTION_MARKER)


def _ends_report(line: str) -> bool:
    """A line that cannot continue an exception message: another report starts here."""
    return (
        _starts_block(line)
        or _is_marker(line)
        or line.startswith(_NOISE_HEADERS)
        or line.startswith(_STOP_HEADERS)
        or bool(_LIBFUZZER.match(line))
    )


def _exception_line(line: str) -> tuple[str, str]:
    head, sep, rest = line.partition(": ")
    if not sep and head.endswith(":"):
        head = head[:-1]
    return plain_text(head, MAX_TYPE_CHARS), plain_text(rest, MAX_MESSAGE_CHARS)


def _parse_frames(lines: list[str], start: int) -> tuple[FrameCollector, int]:
    """Frames from ``start`` to the first unindented line (the exception line)."""
    collector = FrameCollector()
    pending: Frame | None = None
    index = start
    while index < len(lines):
        line = lines[index]
        if line and not line[0].isspace():
            break
        match = _FRAME.match(line)
        if match:
            if pending is not None:
                collector.add(pending)
            pending = frame_from_match(match)
        elif pending is not None and pending.text is None and line.strip():
            stripped = line.strip()
            if not _CARETS.match(line) and not stripped.startswith("[Previous line repeated"):
                pending = Frame(pending.path, pending.line, pending.function, stripped[:500])
        index += 1
    if pending is not None:
        collector.add(pending)
    return collector, index


def _parse_plain(lines: list[str], start: int) -> tuple[ParsedException, int]:
    """One traceback block whose header (or first frame) is at ``start``."""
    first = start + 1 if _TRACEBACK.match(lines[start]) else start
    collector, index = _parse_frames(lines, first)
    exception_type = message = ""
    if index < len(lines) and not _ends_report(lines[index]):
        exception_type, message = _exception_line(lines[index])
        index += 1
    frames, omitted = collector.frames(), collector.omitted()
    return ParsedException(exception_type, message, frames, (), omitted), index


def _box_end(lines: list[str], start: int) -> int:
    """Where a boxed group that starts at ``start`` ends: an unindented report boundary."""
    index = start + 1
    while index < len(lines):
        line = lines[index]
        if line and not line[0].isspace() and (line in _SEPARATORS or _ends_report(line)):
            break
        index += 1
    return index


def _parse_block(lines: list[str], start: int, depth: int) -> tuple[ParsedException, int]:
    boxed = _BOXED_GROUP.match(lines[start])
    if boxed is None:
        return _parse_plain(lines, start)
    end = _box_end(lines, start)
    return _first_leaf(lines[start:end], len(boxed.group("indent")), depth), end


def _next_link(lines: list[str], index: int) -> tuple[Relation | None, int]:
    """After an exception line: the separator that chains the next block, and where it is."""
    scanned = 0
    while index < len(lines) and scanned < MAX_CONTINUATION_LINES:
        line = lines[index]
        relation = _SEPARATORS.get(line.strip())
        if relation is not None:
            index += 1
            while index < len(lines) and not lines[index].strip():
                index += 1
            if index < len(lines) and _starts_block(lines[index]):
                return relation, index
            return None, index
        if _ends_report(line):
            break
        index += 1
        scanned += 1
    return None, index


def _parse_chain(lines: list[str], start: int, depth: int) -> tuple[ParsedException, int]:
    """A chain of blocks from ``start``: the first printed one, with the rest as links."""
    main, index = _parse_block(lines, start, depth)
    blocks: list[ParsedException] = []
    links: list[ChainLink] = []
    relation, index = _next_link(lines, index)
    while relation is not None and len(links) < MAX_CHAIN_LINKS:
        block, index = _parse_block(lines, index, depth)
        blocks.append(block)
        links.append(ChainLink(relation, block.exception_type, block.message, block.frames))
        relation, index = _next_link(lines, index)
    if not links:
        return main, index
    # Each block was raised while the one printed before it was being handled: join from
    # the last printed (outermost) inwards.
    frames: tuple[Frame, ...] = ()
    omitted = 0
    for block in reversed((main, *blocks)):
        frames, lost = join_stacks(frames, block.frames, omitted)
        omitted = lost + block.frames_omitted
    joined = ParsedException(
        main.exception_type, main.message, frames, (*main.chain, *links), omitted
    )
    return joined, index


def _parse_content(lines: list[str], depth: int) -> tuple[ParsedException, ParsedException]:
    """An unboxed exception's text: (its first-printed exception, its last-printed one)."""
    for index, line in enumerate(lines):
        if _starts_block(line):
            main, _ = _parse_chain(lines, index, depth)
            last = main
            if main.chain:
                link = main.chain[-1]
                last = ParsedException(link.exception_type, link.message, link.frames)
            return main, last
    for line in lines:
        if line.strip():
            # A sub-exception that was never raised is printed as its exception line alone.
            bare = ParsedException(*_exception_line(line), frames=())
            return bare, bare
    empty = ParsedException("", "", ())
    return empty, empty


def _first_leaf(lines: list[str], column: int, depth: int) -> ParsedException:
    """The first leaf of a boxed exception group whose margin is at ``column``."""
    if depth >= MAX_GROUP_DEPTH:
        # Too deep to follow (hostile text): every way back in here passes this check.
        return ParsedException("", "", ())
    own, sub = unbox_first_sub(lines, column)
    main, group = _parse_content(own, depth + 1)
    if sub is None:
        return main
    leaf = _first_leaf(sub, column + 2, depth + 1)
    # The leaf was caught by a frame still running when the group was raised.
    frames, lost = join_stacks(group.frames, leaf.frames, group.frames_omitted)
    link = ChainLink(Relation.GROUP, group.exception_type, group.message, group.frames)
    return ParsedException(
        leaf.exception_type,
        leaf.message,
        frames,
        (*leaf.chain, link)[: MAX_CHAIN_LINKS * 2],
        lost + leaf.frames_omitted,
    )


def _region_start(lines: list[str]) -> tuple[int, bool, tuple[str, str] | None]:
    """Where to look for the crash (after the last, best marker), whether a marker was
    found, and for atheris' marker the exception line it prints before the traceback."""
    last_shim = last_atheris = -1
    for index, line in enumerate(lines):
        if line.strip() == SHIM_EXCEPTION_MARKER:
            last_shim = index
        elif line.strip() == ATHERIS_EXCEPTION_MARKER:
            last_atheris = index
    if last_shim >= 0:
        return last_shim + 1, True, None
    header = None
    for line in lines[last_atheris + 1 :] if last_atheris >= 0 else ():
        if line.strip():
            header = _exception_line(line)
            break
    return last_atheris + 1, last_atheris >= 0, header


def _fallback(lines: list[str], start: int, marked: bool) -> ParsedException | None:
    """No traceback header: a bare SyntaxError location, or atheris' exception line alone."""
    for index in range(start, len(lines)):
        if _FRAME.match(lines[index]):
            parsed, _ = _parse_plain(lines, index)
            return parsed if parsed.exception_type else None
        if _ends_report(lines[index]):
            break
    if marked:
        for line in lines[start:]:
            if line.strip():
                return ParsedException(*_exception_line(line), frames=())
    return None


def parse_crash(text: str) -> ParsedException | None:
    """The crash's own exception in engine or interpreter output, or None if none is found."""
    lines = prepare_lines(text)
    start, marked, header = _region_start(lines)
    first: ParsedException | None = None
    previous = ""
    index = start
    while index < len(lines):
        line = lines[index]
        if _starts_block(line):
            parsed, end = _parse_chain(lines, index, 0)
            if not previous.startswith(_NOISE_HEADERS):
                # atheris prints the exception line before the traceback too: a traceback
                # quoted inside that message is skipped unless nothing else matches.
                if header is None or header == (parsed.exception_type, parsed.message):
                    return parsed
                first = first or parsed
            index, previous = max(end, index + 1), ""
            continue
        if line.strip():
            previous = line.lstrip()
        index += 1
    return first or _fallback(lines, start, marked)
